"""A local AWS account with a governor deployed in it, to point the CLI at: ``make local-account`` (or
``python -m localaws.sandbox``), running until Ctrl-C. docs/tour.md walks through it in five minutes.

It starts localaws's HTTP server (moto, with the gaps localaws fills) on loopback, deploys the governor
as ``cdk deploy`` leaves it (localaws.deployment.deploy_governor: the stack and its outputs, the two
functions, the trail, the alarm topic), creates a few log groups that need something, and prints the
endpoint and the CLI commands to try. A log group created while it runs reaches the deployed functions
(CloudTrail, EventBridge, queue, Lambda played in-process), as in an account. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .deployment import LocalDeployment, deploy_governor
from .server import RunningServer, aws_like_server

STACK_NAME = "LogGroupGovernor"
DEFAULT_PORT = 4599
#: The credentials any client of the local account uses (moto accepts any; these keep real ones out).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
SHIPPER = "log-shipper"
#: The tour's apply checkpoint (relative to the repository): a new local account starts a new run, so it is cleared at start.
CHECKPOINT = ".cache/local-account/apply.json"
#: The groups a newcomer meets: name -> (retention days, tags). The deployed policy (30 days, ship everything but
#: opted-out groups) changes the first three, leaves the opted-out one alone, and finds the last one compliant.
GROUPS: dict[str, tuple[int | None, dict[str, str]]] = {
    "/aws/lambda/orders-api": (None, {}),
    "/aws/lambda/payments-worker": (7, {}),
    "/ecs/checkout": (None, {"team": "checkout"}),
    "/aws/lambda/experiments": (None, {"log-group-governor:opt-out": "true"}),
    "/aws/lambda/already-governed": (30, {}),
}


@dataclass
class Sandbox:
    server: RunningServer
    deployment: LocalDeployment
    destination_arn: str

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def region(self) -> str:
        return self.server.region

    def commands(self) -> list[tuple[str, str]]:
        """What to try, each with what it shows: the commands docs/tour.md documents."""
        where = f"--endpoint-url {self.endpoint_url} --region {self.region} --stack-name {STACK_NAME}"
        return [
            ("what the governor would change in the groups that exist (changes nothing)", f"log-group-governor plan {where}"),
            ("prove the deployed governor works: a probe group is subscribed and retained", f"log-group-governor selftest {where}"),
            ("change them, resumably", f"log-group-governor apply {where} --checkpoint {CHECKPOINT}"),
            ("run the plan again: those groups are governed now", f"log-group-governor plan {where}"),
        ]


@contextmanager
def sandbox(*, port: int = 0) -> Iterator[Sandbox]:
    """The local account's server on 127.0.0.1:``port`` (0: a free one), a governor deployed and running in it."""
    for key, value in CREDENTIALS.items():
        os.environ.setdefault(key, value)
    checkpoint = Path(__file__).resolve().parent.parent / CHECKPOINT
    checkpoint.unlink(missing_ok=True)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    with aws_like_server(port=port) as server:
        os.environ.setdefault("AWS_DEFAULT_REGION", server.region)
        # The deployed functions run in this process: their clients call the local account, never AWS.
        os.environ["AWS_ENDPOINT_URL"] = server.endpoint_url
        account = server.account()
        account.gaps = server.middleware.gaps
        shipper = account.create_function(SHIPPER)
        for name, (days, tags) in GROUPS.items():
            filters = [("log-group-governor", shipper)] if name == "/aws/lambda/already-governed" else []
            account.create_log_group(name, retention_days=days, tags=tags, filters=filters)
        config = {"destinationArn": shipper, "defaultRetentionDays": 30, "excludeTags": {"log-group-governor:opt-out": "true"}}
        deployment = deploy_governor(account, stack_name=STACK_NAME, config=config)
        deployment.confirm_alarm_email()
        with deployment.running():
            yield Sandbox(server, deployment, shipper)


def describe(box: Sandbox, out: TextIO) -> None:
    credentials = " ".join(f"{k}={v}" for k, v in CREDENTIALS.items())
    print(f"A local AWS account is listening on {box.endpoint_url} (region {box.region}), with the governor deployed as "
          f"stack {STACK_NAME} and {len(GROUPS)} log groups. Nothing leaves this machine.", file=out)
    print("\nIn another shell, in this repository:\n", file=out)
    print(f'  export PATH="$PWD/.venv/bin:$PATH" {credentials}\n', file=out)
    for what, command in box.commands():
        print(f"  # {what}\n  {command}\n", file=out)
    print("Ctrl-C stops it (and forgets the account). The tour: docs/tour.md", file=out, flush=True)


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout, ready: threading.Event | None = None,
         stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the loopback port to listen on (default {DEFAULT_PORT}; 0: a free one)")
    args = parser.parse_args(argv)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with sandbox(port=args.port) as box:
            describe(box, out)
            if ready:
                ready.set()
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"local-account: cannot listen on 127.0.0.1:{args.port} ({error.strerror}); pass --port <another> (0: any free one)", file=sys.stderr)
        return 1
    print("stopped: the local account is gone", file=out)
    return 0




if __name__ == "__main__":
    sys.exit(main())
