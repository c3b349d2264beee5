"""Shared fixtures: a moto account, the functions' configuration, and calling handlers as Lambda does."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governor.handlers import create_log_group as handlers
from governor.runtime import ENV_CONFIG
from localaws.account import LocalAccount, local_account
from localaws.lambda_runtime import invoke

SHIPPER = "log-shipper"


@pytest.fixture
def account() -> Iterator[LocalAccount]:
    with local_account() as local:
        yield local


@pytest.fixture
def shipper_arn(account: LocalAccount) -> str:
    """The destination: a Lambda function in the account, as a team's log shipper would be."""
    return account.create_function(SHIPPER)


@pytest.fixture
def configure(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """Set the functions' GOVERNOR_CONFIG as the stack would (keys as in cdk.json) and start cold."""

    def _configure(**overrides: Any) -> dict[str, Any]:
        raw = {"destinationArn": shipper_arn, "excludeTags": {"log-group-governor:opt-out": "true"}, **overrides}
        monkeypatch.setenv(ENV_CONFIG, json.dumps(raw))
        handlers.subscription_governor.cache_clear()
        handlers.retention_governor.cache_clear()
        return raw

    _configure()
    yield _configure
    handlers.subscription_governor.cache_clear()
    handlers.retention_governor.cache_clear()


class Invocation:
    """One handler call: its result and what it printed (Powertools JSON logs and EMF metrics)."""

    def __init__(self, result: Any, stdout: str) -> None:
        self.result = result
        self.lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "_aws" not in line]

    def metrics(self) -> dict[tuple[str, str | None], float]:
        """EMF metrics by (name, Reason dimension or None)."""
        found: dict[tuple[str, str | None], float] = {}
        for line in self.lines:
            if "_aws" not in line:
                continue
            for directive in line["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = line[metric["Name"]]
                    found[(metric["Name"], line.get("Reason"))] = sum(value) if isinstance(value, list) else value
        return found


def call(handler: Callable[[Any, Any], Any], event: Any, function_name: str = "governor") -> Invocation:
    """Call a handler as Lambda would, capturing what it prints."""
    out = io.StringIO()
    result = invoke(handler, event, function_name=function_name, out=out)
    return Invocation(result, out.getvalue())


def call_failing(handler: Callable[[Any, Any], Any], event: Any) -> tuple[BaseException, Invocation]:
    out = io.StringIO()
    with pytest.raises(Exception) as raised:
        invoke(handler, event, function_name="governor", out=out)
    return raised.value, Invocation(None, out.getvalue())
