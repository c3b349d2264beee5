"""Replay ship-logs' dead-letter queue: each message back to the function, deleted once it went through.

The queue holds batches Lambda gave up on (the original ``awslogs`` event) and records the sink
refused (``shipLogsRejected``); the function takes both. Corrupt payloads (``shipLogsCorrupt``)
cannot be shipped and are left in the queue for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..aws import QueueGateway
from .service import CORRUPT_KEY


@dataclass
class RedriveResult:
    replayed: int = 0
    failed: list[str] = field(default_factory=list)
    left_corrupt: int = 0


def redrive(queue: QueueGateway, invoke: Callable[[str], None]) -> RedriveResult:
    """Each message once: until the queue answers empty or only with messages already tried (a message
    left in the queue comes back once its visibility timeout passes)."""
    result = RedriveResult()
    tried: set[str] = set()
    while True:
        messages = [m for m in queue.receive() if m[0] not in tried]
        if not messages:
            return result
        for message_id, receipt, body in messages:
            tried.add(message_id)
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
