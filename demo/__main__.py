"""`make demo`: the governor at work on a local, moto-backed account.

It reads cdk.json as `cdk synth` does, points the destination at a log-shipper function in the local
account (what `-c governor:destinationArn=...` does on a real deploy), creates a realistic mix of log
groups, feeds CloudTrail-shaped CreateLogGroup events through the real handlers, and prints each
group before and after with the outcome and its reason.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from unittest import mock
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lambdas"))

from governor.runtime import ENV_CONFIG  # noqa: E402
from localaws.account import LocalAccount, local_account  # noqa: E402
from localaws.events import create_log_group_event, fixture  # noqa: E402
from localaws.lambda_runtime import invoke  # noqa: E402
from stacks.settings import DeploymentSettings  # noqa: E402

SHIPPER = "log-shipper"
#: What an operator would add on top of the repository's cdk.json for this account.
DEMO_OVERRIDES = {
    "governor:excludePrefixes": ["/aws/lambda/sandbox-"],
    "governor:retentionOverrides": {"/aws/lambda/prod-": 365},
}


def demo_context(destination_arn: str) -> dict[str, Any]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return {**context, **DEMO_OVERRIDES, "governor:destinationArn": destination_arn}


def create_groups(account: LocalAccount) -> list[str]:
    """A realistic mix, as an account that has run for a while holds it."""
    vendor = account.create_function("vendor-apm-forwarder")
    siem = account.create_stream("security-siem")
    return [
        account.create_log_group("/aws/lambda/orders-api"),
        account.create_log_group("/aws/lambda/payments-worker", retention_days=7),
        account.create_log_group("/aws/lambda/prod-ledger", retention_days=90),
        account.create_log_group("/aws/lambda/reporting", retention_days=731),
        account.create_log_group(f"/aws/lambda/{SHIPPER}"),
        account.create_log_group("/aws/lambda/sandbox-experiment"),
        account.create_log_group("/aws/lambda/noisy-batch", tags={"log-group-governor:opt-out": "true"}),
        account.create_log_group("/archive/audit-trail", log_group_class="INFREQUENT_ACCESS"),
        account.create_log_group("/aws/lambda/checkout", filters=[("vendor-apm", vendor), ("siem", siem)]),
        account.create_log_group("/ecs/search-indexer", filters=[("vendor-apm", vendor)]),
    ]


def describe(snapshot: dict[str, Any]) -> str:
    retention = f"{snapshot['retention']}d" if snapshot["retention"] else "never"
    filters = ",".join(sorted(snapshot["filters"])) or "-"
    return f"{retention:>6} {filters}"


def main() -> None:
    from governor.handlers.create_log_group import set_retention, subscribe_log_group

    log_file = Path(tempfile.gettempdir()) / "log-group-governor-demo.jsonl"
    with local_account() as account, log_file.open("w") as out:
        shipper_arn = account.create_function(SHIPPER)
        settings = DeploymentSettings.from_context(demo_context(shipper_arn))  # what synth validates
        config_json = json.dumps(settings.policy.to_json_dict())             # what the stack deploys
        print(f"Local account {account.account_id} in {account.region} (moto). Destination: {shipper_arn}")
        print(f"Policy (cdk.json + demo overrides): {config_json}\n")

        with mock.patch.dict(os.environ, {ENV_CONFIG: config_json}):
            groups = create_groups(account)
            before = {name: account.snapshot(name) for name in groups}
            calls_before = Counter(account.calls)
            rows = []
            for name in groups:
                event = create_log_group_event(name, region=account.region)
                subscription = invoke(subscribe_log_group, event, function_name="subscribe-log-group", out=out)
                retention = invoke(set_retention, event, function_name="set-retention", out=out)
                rows.append((name, subscription, retention))

            replay = invoke(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api"), function_name="subscribe-log-group", out=out)
            other_call = invoke(set_retention, fixture("put_retention_policy"), function_name="set-retention", out=out)
            malformed = create_log_group_event("/aws/lambda/x")
            del malformed["detail"]["requestParameters"]
            broken = invoke(subscribe_log_group, malformed, function_name="subscribe-log-group", out=out)
            made = account.calls - calls_before

            print(f"{'log group':<30} {'class':<17} {'before':<26} {'subscription':<40} {'retention':<37} after")
            for name, subscription, retention in rows:
                after = account.snapshot(name)
                print(
                    f"{name:<30} {after['class']:<17} {describe(before[name]):<26} "
                    f"{subscription['action'] + ' (' + subscription['reason'] + ')':<40} "
                    f"{retention['action'] + ' (' + retention['reason'] + ')':<37} {describe(after)}"
                )
            print()
            print(f"Replayed event for /aws/lambda/orders-api: {replay['action']} ({replay['reason']}): nothing written twice")
            print(f"A PutRetentionPolicy event:                 {other_call['status']} ({other_call['reason']})")
            print(f"An event without requestParameters:         {broken['status']} ({broken['reason']})")
            print(f"\nAPI calls made by the handlers: {dict(sorted(made.items()))}")
    print(f"Handler logs and EMF metrics (JSON lines): {log_file}")


if __name__ == "__main__":
    main()
