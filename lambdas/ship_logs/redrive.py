"""Replay ship-logs' dead-letter queue: each message back to the function, deleted once it went through.

The queue holds batches Lambda gave up on (the original ``awslogs`` event) and records the sink
refused (``shipLogsRejected``); the function takes both. Corrupt payloads (``shipLogsCorrupt``)
cannot be shipped and are left in the queue for a person to look at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .aws import QueueGateway
from .service import CORRUPT_KEY


@dataclass
class RedriveResult:
    replayed: int = 0
    failed: list[str] = field(default_factory=list)
    left_corrupt: int = 0
    #: Messages that arrived after the redrive started (records refused again): left for the next one.
    left_new: int = 0


def redrive(queue: QueueGateway, invoke: Callable[[str], None], *, started_ms: int | None = None) -> RedriveResult:
    """The messages that were in the queue when the redrive started, each once. A record the sink
    refuses again goes back into the queue as a new message: it is left for the next redrive, so a
    redrive always ends (``started_ms``: when it started, epoch milliseconds; default now)."""
    result = RedriveResult()
    started_ms = int(time.time() * 1000) if started_ms is None else started_ms
    tried: set[str] = set()
    while True:
        messages = [m for m in queue.receive() if m[0] not in tried]
        if not messages:
            return result
        for message_id, receipt, body, sent_ms in messages:
            tried.add(message_id)
            if sent_ms > started_ms:
                result.left_new += 1
                continue
            if _is_corrupt(body):
                result.left_corrupt += 1
                continue
            try:
                invoke(body)
            except Exception as error:  # leave it in the queue; report it
                result.failed.append(f"{type(error).__name__}: {error}"[:300])
                continue
            queue.delete(receipt)
            result.replayed += 1


def _is_corrupt(body: str) -> bool:
    try:
        return CORRUPT_KEY in json.loads(body)
    except ValueError:
        return True
