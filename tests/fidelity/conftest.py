"""Dual-mode tests of localaws's rules, as moto's own ``@aws_verified`` tests are.

By default each test runs against localaws (moto and its fillers). With
``LOG_GROUP_GOVERNOR_FIDELITY=real`` and credentials for a sandbox account (``make fidelity-real``) the
same assertions run against that account: every resource is created under the reserved prefix
``/log-group-governor-fidelity/<run>/`` (roles: ``log-group-governor-fidelity-<run>``) and deleted
at the end; nothing else is read for its state or touched, and a rule whose check would change
account-wide state (an account-level policy that is not a dry run) runs locally only. Which rules
have been verified this way is recorded in localaws/FIDELITY.md.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from localaws.account import LocalAccount, local_account

MODE_ENV = "LOG_GROUP_GOVERNOR_FIDELITY"
#: An organization-wide CloudWatch Logs destination (another account, this region) for the sender-role rule.
ORG_DESTINATION_ENV = "LOG_GROUP_GOVERNOR_FIDELITY_ORG_DESTINATION"
RESERVED_PREFIX = "/log-group-governor-fidelity/"


def real_mode() -> bool:
    return os.environ.get(MODE_ENV) == "real"


@dataclass
class Target:
    """Where a fidelity test runs: localaws, or a real sandbox account."""

    real: bool
    region: str
    account_id: str
    run: str
    make_client: Callable[[str], Any]
    #: The localaws account (local mode only), for rules about what AWS does rather than answers (delivery).
    local: LocalAccount | None = None
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.make_client(service)

    def name(self, suffix: str) -> str:
        """A log group name under the reserved prefix, unique to this run."""
        return f"{RESERVED_PREFIX}{self.run}/{suffix}"

    def log_group(self, suffix: str, **request: Any) -> str:
        name = self.name(suffix)
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name, **request)
        self._undo.append(lambda: logs.delete_log_group(logGroupName=name))
        return name

    def on_cleanup(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def eventually(self, check: Callable[[], Any], *, seconds: float = 90.0) -> Any:
        """Locally at once; on a real account, poll while eventually consistent APIs catch up."""
        deadline = time.monotonic() + (seconds if self.real else 0)
        while True:
            try:
                return check()
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(5)

    def cleanup(self) -> None:
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:  # best effort: the rest still goes
                pass


def local_only(reason: str) -> pytest.MarkDecorator:
    """A rule checked against localaws only: on a real account its check would change account-wide state."""
    return pytest.mark.skipif(real_mode(), reason=f"local only: {reason}")


@pytest.fixture
def target() -> Iterator[Target]:
    run = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    if real_mode():
        session = boto3.Session()
        region = session.region_name
        if not region:
            pytest.fail(f"{MODE_ENV}=real needs a region: set AWS_REGION or AWS_DEFAULT_REGION")
        account = session.client("sts").get_caller_identity()["Account"]
        found = Target(True, region, account, run, session.client)
        try:
            yield found
        finally:
            found.cleanup()
        return
    with local_account() as local:
        found = Target(False, local.region, local.account_id, run, local.client, local=local)
        try:
            yield found
        finally:
            found.cleanup()
