"""Exact timers: one thread sleeps until the earliest deadline, never a polling tick.

Used for ``run_on`` starts, retry back-offs, timeouts and cancel deadlines.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any, Callable

from .errors import EngineClosed


MAX_SLEEP = 3600.0


class Timer:
    __slots__ = ("when", "fn", "args", "cancelled")

    def __init__(self, when: float, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """Run callbacks at wall-clock times (epoch seconds) on one thread."""

    def __init__(self, clock: Callable[[], float] = time.time, name: str = "bgtasks-timers") -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(when, fn, args)
        with self._cond:
            if self._closed:
                raise EngineClosed()
            heapq.heappush(self._heap, (when, next(self._count), timer))
            if self._heap[0][2] is timer:
                self._cond.notify()
        return timer

    def after(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        return self.at(self._clock() + delay, fn, *args)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - self._clock()
                    if delay <= 0:
                        break
                    # Capped: a far-future deadline (year 2999) overflows the wait,
                    # and a wall clock that jumps is noticed within the hour.
                    self._cond.wait(min(delay, MAX_SLEEP))
                if self._closed:
                    return
                _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.fn(*timer.args)
                except Exception:  # one bad callback must not stop every other timer
                    import logging

                    logging.getLogger(__name__).exception("timer callback failed")
