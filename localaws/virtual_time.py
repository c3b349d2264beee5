"""Virtual time for simulations of several concurrent actors (Lambda containers, another tool).

Each actor is a thread, but only one runs at a time: an actor runs until it sleeps, and time jumps
to the earliest wake-up once every actor sleeps. The real code under test sees an ordinary clock and
sleep function; hours of simulated traffic take seconds, and the same inputs give the same run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._cv = threading.Condition()
        self._sleeping: list[tuple[float, int, list[bool]]] = []
        self._running = 0
        self._order = itertools.count()
        self.errors: list[BaseException] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._cv:
            woken = [False]
            heapq.heappush(self._sleeping, (self.now + max(0.0, seconds), next(self._order), woken))
            self._running -= 1
            self._wake_next()
            while not woken[0]:
                self._cv.wait()

    def run(self, actors: list[Callable[[], Any]]) -> None:
        """Run the actors to their end, one at a time, in virtual time; re-raise the first failure."""
        with self._cv:
            self._running += len(actors)
        threads = [threading.Thread(target=self._actor, args=(actor,), daemon=True) for actor in actors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]

    def _actor(self, actor: Callable[[], Any]) -> None:
        try:
            self.sleep(0)  # queue up: from here on, one actor at a time
            actor()
        except BaseException as error:  # noqa: BLE001 - reported by run()
            self.errors.append(error)
        finally:
            with self._cv:
                self._running -= 1
                self._wake_next()

    def _wake_next(self) -> None:
        if self._running == 0 and self._sleeping:
            wake_at, _, woken = heapq.heappop(self._sleeping)
            self.now = max(self.now, wake_at)
            woken[0] = True
            self._running += 1
            self._cv.notify_all()
