"""The backfill state machine's loop, run locally: what the ASL definition in stacks/backfill.py does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Matches the state machine's first retrier: errors that retrying cannot fix end the execution.
NOT_RETRYABLE = ("BadRequest", "ConfigError")
MAX_ATTEMPTS = 10


@dataclass
class Execution:
    output: dict[str, Any] | None = None
    invocations: int = 0
    failures: list[str] = field(default_factory=list)


def run_execution(name: str, execution_input: Any, invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> Execution:
    """Invoke ``invoke`` with the state machine's payload until it answers done; retry failures the
    way the Retry block does (up to MAX_ATTEMPTS in a row)."""
    execution = Execution()
    attempts = 0
    while True:
        execution.invocations += 1
        try:
            output = invoke({"execution": name, "input": execution_input})
        except Exception as error:
            if type(error).__name__ in NOT_RETRYABLE or attempts >= MAX_ATTEMPTS:
                raise
            attempts += 1
            execution.failures.append(f"{type(error).__name__}: {error}")
            continue
        attempts = 0
        if output["done"]:
            execution.output = output
            return execution
