"""The context API a task's code uses: ``progress``, ``track``, ``cancelled``.

Each running task has a :class:`TaskContext` bound to the thread that runs it. The
module functions find it through a thread-local and are no-ops outside a task, so
the same code runs unchanged in the foreground.

``progress()`` is called in tight loops, so it only records the latest values and
checks the cancel flag; the values cross to the engine (or out of a worker process)
at most every :data:`FLUSH_INTERVAL` seconds, and once more when the task ends.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

from .errors import TaskCancelled
from .models import finite

T = TypeVar("T")

FLUSH_INTERVAL = 0.05
"""Seconds between two progress reports of one task: 20 a second is smooth for a
progress bar and cheap to send."""

_UNSET: Any = object()


class ProgressSink(Protocol):
    """Where a context sends what it coalesced (the engine, or a worker's pipe)."""

    def progress(self, current: float, total: float | None, message: str | None) -> None: ...

    def log(self, text: str) -> None: ...


class TaskContext:
    """Passed to a kind's ``run(ctx)``; also what the module functions use."""

    __slots__ = (
        "task_id",
        "params",
        "attempt",
        "payload",
        "_sink",
        "_cancelled",
        "_cancel_event",
        "_current",
        "_total",
        "_message",
        "_dirty",
        "_next_flush",
        "_clock",
    )

    def __init__(
        self,
        task_id: str,
        sink: ProgressSink,
        params: Mapping[str, Any] | None = None,
        attempt: int = 1,
        clock: Callable[[], float] = time.monotonic,
        payload: bytes | None = None,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.task_id = task_id
        self.payload = payload
        self.params = dict(params or {})
        self.attempt = attempt
        self._sink = sink
        # A plain flag, not a threading.Event: set once from another thread, read in
        # tight loops, and an Event costs a lock and a condition per task.
        self._cancelled = False
        self._cancel_event = cancel_event
        """Optional: an Event another component sets (a worker's reader thread)."""
        self._current = 0.0
        self._total: float | None = None
        self._message: str | None = None
        self._dirty = False
        self._next_flush = 0.0
        self._clock = clock

    # -- what task code calls -------------------------------------------------
    def progress(self, current: float, total: float | None = _UNSET, message: str | None = None) -> None:
        """Record progress; raises :class:`TaskCancelled` once cancel was asked for."""
        if self._cancelled or (self._cancel_event is not None and self._cancel_event.is_set()):
            raise TaskCancelled()
        self._current = current
        if total is not _UNSET:
            self._total = total
        if message is not None:
            self._message = message
        self._dirty = True
        now = self._clock()
        if now >= self._next_flush:
            self._next_flush = now + FLUSH_INTERVAL
            self.flush()

    def track(
        self, iterable: Iterable[T], total: float | None = None, message: str | None = None
    ) -> Iterator[T]:
        """Yield from ``iterable`` while reporting progress (total from ``len()`` when it can)."""
        if total is None:
            try:
                total = float(len(iterable))  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.progress(0, total, message)
        n = 0
        for item in iterable:
            yield item
            n += 1
            self.progress(n)

    def cancelled(self) -> bool:
        """True once cancel was asked for: a cooperative check that never raises."""
        return self._cancelled or (self._cancel_event is not None and self._cancel_event.is_set())

    def log(self, text: str) -> None:
        """Append text to the task's log directly (stdout/stderr are captured anyway)."""
        self._sink.log(text)

    # -- what executors call --------------------------------------------------
    def request_cancel(self) -> None:
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

    def flush(self) -> None:
        """Send the latest progress now, if anything changed since the last send.

        Values are cleaned here, once per send rather than on every ``progress()`` call
        (which must stay cheap): a ``current`` that is not a finite number is not sent,
        a ``total`` that is not one is sent as unknown."""
        if self._dirty:
            self._dirty = False
            current = finite(self._current)
            if current is None:
                return
            total = None if self._total is None else finite(self._total)
            self._sink.progress(current, total, self._message)


_local = threading.local()


def current() -> TaskContext | None:
    """The context of the task running in this thread, if any."""
    return getattr(_local, "ctx", None)


def bind(ctx: TaskContext | None) -> TaskContext | None:
    """Make ``ctx`` this thread's context; returns the previous one to restore."""
    prev = getattr(_local, "ctx", None)
    _local.ctx = ctx
    return prev


def progress(current: float, total: float | None = _UNSET, message: str | None = None) -> None:
    """Report progress of the task running in this thread (no-op outside a task).

    Cheap: coalesced, safe to call millions of times. Raises :class:`TaskCancelled`
    once the task was asked to stop."""
    ctx = getattr(_local, "ctx", None)
    if ctx is not None:
        ctx.progress(current, total, message)


def track(iterable: Iterable[T], total: float | None = None, message: str | None = None) -> Iterator[T]:
    """Like ``tqdm``: iterate while reporting progress. Plain iteration outside a task."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        return iter(iterable)
    return ctx.track(iterable, total, message)


def cancelled() -> bool:
    """True when the task running in this thread was asked to stop (False outside a task)."""
    ctx = getattr(_local, "ctx", None)
    return ctx is not None and ctx.cancelled()
