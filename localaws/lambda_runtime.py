"""Calling handlers locally as Lambda does: a context object, and their output captured."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from typing import Any, TextIO

from governor.config import SERVICE_NAME
from governor.pacing import EVENT_HANDLER_TIMEOUT_S

from .account import ACCOUNT_ID, DEFAULT_REGION


class SimulatedClock:
    """Time that passes only when something sleeps or says it took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class LocalLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    #: The event handlers' timeout in the stack (the functions this runs are deployed with it).
    timeout_ms: int = EVENT_HANDLER_TIMEOUT_S * 1000
    #: The function's region and account: where the handler runs (the environment's, as moto's are chosen).
    region: str = field(default_factory=lambda: os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)
    account: str = field(default_factory=lambda: os.environ.get("MOTO_ACCOUNT_ID") or ACCOUNT_ID)
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: Real time by default; a SimulatedClock's monotonic for simulated invocations.
    clock: Callable[[], float] = time.monotonic
    _started: float | None = None

    def __post_init__(self) -> None:
        self._started = self.clock()

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((self.clock() - self._started) * 1000))


@contextmanager
def handler_output_to(out: TextIO) -> Iterator[None]:
    """Send what handlers print (Powertools JSON logs, EMF metrics) to ``out`` instead of stdout."""
    # Powertools' Logger keeps the stream it was created with; metrics are printed to sys.stdout.
    streams = [h for h in logging.getLogger(SERVICE_NAME).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(out) for h in streams]
    try:
        with redirect_stdout(out):
            yield
    finally:
        for handler, stream in zip(streams, previous):
            handler.setStream(stream)


def invoke(handler: Callable[[Any, Any], Any], event: Any, *, function_name: str, out: TextIO,
           timeout_ms: int = EVENT_HANDLER_TIMEOUT_S * 1000) -> Any:
    """Call ``handler`` as Lambda would, its output going to ``out``."""
    with handler_output_to(out):
        return handler(event, LocalLambdaContext(function_name=function_name, timeout_ms=timeout_ms))
