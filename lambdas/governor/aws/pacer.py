"""The pacer: CloudWatch Logs' calls spaced at a share of the account's quotas (``LogsGateway`` waits on it)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping

from ..config import DEFAULT_API_QUOTAS_TPS


class Pacer:
    """Spaces the calls of each operation evenly at its rate, and gives way when the account throttles.

    ``quotas_tps`` are the rates to aim for (a share of the account's quotas, so other callers keep
    theirs). A throttle answer halves that operation's rate (down to ``MIN_SHARE`` of the aim);
    once ``RECOVERY_HOLD_S`` have passed without one, the rate climbs back by ``RECOVERY_PER_S`` of
    the aim each second: decrease fast, recover slowly. ``clock`` and ``sleep`` are injectable so
    tests and simulations run on simulated time.
    """

    MIN_SHARE = 0.05
    RECOVERY_HOLD_S = 10.0
    RECOVERY_PER_S = 0.02

    def __init__(
        self,
        quotas_tps: Mapping[str, float] = DEFAULT_API_QUOTAS_TPS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.quotas_tps = dict(quotas_tps)
        self._rate = dict(quotas_tps)
        self._next_slot: dict[str, float] = {}
        self._throttled_at: dict[str, float] = {}
        self._recovered_at: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep
        #: Throttle answers seen, by operation.
        self.throttles: Counter[str] = Counter()

    def rate(self, operation: str) -> float | None:
        """The operation's current rate (requests per second), None when it is not paced."""
        if operation not in self._rate:
            return None
        self._recover(operation, self._clock())
        return self._rate[operation]

    def wait(self, operation: str) -> None:
        rate = self.rate(operation)
        if rate is None:
            return
        now = self._clock()
        slot = self._next_slot.get(operation, now)
        if slot > now:
            self._sleep(slot - now)
            now = slot
        self._next_slot[operation] = now + 1.0 / rate

    def throttled(self, operation: str) -> None:
        """The account answered a throttle for ``operation``: halve its rate."""
        self.throttles[operation] += 1
        if operation not in self._rate:
            return
        now = self._clock()
        floor = self.quotas_tps[operation] * self.MIN_SHARE
        self._rate[operation] = max(floor, self._rate[operation] / 2)
        self._throttled_at[operation] = self._recovered_at[operation] = now

    def _recover(self, operation: str, now: float) -> None:
        aim, since = self.quotas_tps[operation], self._throttled_at.get(operation)
        if since is None or self._rate[operation] >= aim or now - since < self.RECOVERY_HOLD_S:
            return
        last = max(self._recovered_at[operation], since + self.RECOVERY_HOLD_S)
        self._rate[operation] = min(aim, self._rate[operation] + aim * self.RECOVERY_PER_S * max(0.0, now - last))
        self._recovered_at[operation] = now
