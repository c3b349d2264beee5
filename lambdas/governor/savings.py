"""What a retention change saves: an estimate of the stored bytes it will expire, and their monthly storage cost.

CloudWatch Logs tells a group's stored bytes and creation time, not how the bytes spread over time, so the bytes a shorter
retention expires are estimated under one assumption (ESTIMATE_ASSUMPTION): never a measurement. Pure arithmetic, no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import storage_cost

#: The estimate's one assumption, as the CLI prints it and the docs quote it.
ESTIMATE_ASSUMPTION = "events spread evenly over each group's age (or over its retention, when that is shorter)"
DAY_MS = 86_400_000
#: The retention changes a run keeps (the largest groups first) for its summary's table.
LARGEST_KEPT = 10
#: Keys of a run's storage counters (and of its coverage report).
STORED, NEVER_EXPIRE, EXPIRING = "storedBytes", "neverExpireStoredBytes", "estimatedExpiringBytes"


def expiring_bytes(stored_bytes: int, *, created_ms: int | None, old_days: int | None, new_days: int | None, now_ms: float) -> int:
    """The bytes a group's retention going from ``old_days`` (None: never expires) to ``new_days`` would expire, if its
    events are spread evenly over the days it holds: its age, or its old retention when shorter. 0 when the new retention
    is as long as what it holds, or when the group's age is not known."""
    if not stored_bytes or created_ms is None or new_days is None:
        return 0
    age_days = max(0.0, (now_ms - created_ms) / DAY_MS)
    held_days = age_days if old_days is None else min(age_days, float(old_days))
    if held_days <= new_days:
        return 0
    return int(stored_bytes * (held_days - new_days) / held_days)


def figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The storage figures of a run's counters, with the estimate's monthly saving and its assumption."""
    expiring = counts.get(EXPIRING, 0)
    return {STORED: counts.get(STORED, 0), NEVER_EXPIRE: counts.get(NEVER_EXPIRE, 0), EXPIRING: expiring,
            "estimatedMonthlySavingsUsd": round(storage_cost.monthly_storage_usd(expiring), 12),
            "estimateAssumption": ESTIMATE_ASSUMPTION}


def largest(changes: Iterable[Mapping[str, Any]], *, keep: int = LARGEST_KEPT) -> list[dict[str, Any]]:
    """The retention changes of the largest groups first (by stored bytes, then name), ``keep`` of them."""
    return [dict(c) for c in sorted(changes, key=lambda c: (-c[STORED], c["logGroup"]))[:keep]]


def size(n: float) -> str:
    """Bytes for people, in the price's units: 12.3 GB, 4.0 MB, 512 bytes."""
    for unit, scale in (("GB", storage_cost.BYTES_PER_GB), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{int(n):,} bytes"
