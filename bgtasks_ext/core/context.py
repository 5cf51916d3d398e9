"""The context API a task's code uses: ``progress``, ``track``, ``cancelled``.

Each running task has a :class:`TaskContext` bound where its code runs (a context variable:
the thread that runs the task, and the coroutines that thread runs). The module functions
find it there and are no-ops outside a task, so the same code runs unchanged in the
foreground.

``progress()`` and ``track()`` wrap hot loops, so they must cost less per call than tqdm
does per iteration (SPEC §8; ``benchmarks/bench_progress.py``). Neither reads the clock or
the cancel flags on every call:

- ``progress()`` stores the values and tests one flag, ``_poll``. One pacer thread per
  process (tqdm's monitor thread, in spirit) raises it for every bound context every
  :data:`CHECK_INTERVAL`, and :meth:`TaskContext.request_cancel` raises it at once; the next
  call then checks for a cancel request and, at most every :data:`FLUSH_INTERVAL`, sends
  the latest values to the sink.
- ``track()`` iterates in C (``itertools``) in chunks and checks between two chunks, sizing
  the next chunk from the measured rate so that a check comes about every
  :data:`CHECK_INTERVAL` (tqdm's adaptive ``miniters``). Its count stays exact, also when
  the loop stops early.

A cancel is therefore seen within about :data:`CHECK_INTERVAL` of a loop's wall time, and
the values cross to the engine (or out of a worker process) at most every
:data:`FLUSH_INTERVAL`, and once more when the task ends (:meth:`TaskContext.finish`), so
the final values are exact. What the task writes goes through :class:`.termlines.TermLines`,
so a line redrawn with ``\\r`` (a progress bar) keeps only its last frame in the log.
"""

from __future__ import annotations

import os
import threading
import time
from contextvars import ContextVar
from itertools import chain, count, islice
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

from .errors import TaskCancelled
from .models import finite
from .termlines import TermLines

T = TypeVar("T")

FLUSH_INTERVAL = 0.05
"""Seconds between two progress reports of one task: 20 a second is smooth for a
progress bar and cheap to send."""
CHECK_INTERVAL = FLUSH_INTERVAL / 2
"""Seconds between two checks (cancel requested? progress due?) of a busy loop: a cancel is
seen this late at most, and a report is sent at most this much after it is due."""
MAX_CHUNK = 1 << 20
"""Most items ``track()`` takes between two checks (reached only when the clock stands still)."""

_UNSET: Any = object()
_first = itemgetter(0)
_lines_lock = threading.Lock()
_ENDED = TermLines()
_ENDED.end()


class ProgressSink(Protocol):
    """Where a context sends what it coalesced (the engine, or a worker's pipe)."""

    def progress(self, current: float, total: float | None, message: str | None) -> None: ...

    def log(self, text: str) -> None: ...


class TaskContext:
    """Passed to a kind's ``run(ctx)``; also what the module functions use."""

    __slots__ = (
        "task_id",
        "params",
        "settings",
        "attempt",
        "payload",
        "_sink",
        "_cancelled",
        "_cancel_event",
        "_current",
        "_total",
        "_message",
        "_sent",
        "_poll",
        "_next_flush",
        "_clock",
        "_lines",
        "__weakref__",
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
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.task_id = task_id
        self.payload = payload
        self.params = dict(params or {})
        self.settings: Mapping[str, Any] = settings if settings is not None else {}
        """The kind's settings (``EngineConfig.kind_settings``; ``{}`` when none): read them,
        never change them (one dict serves every task of the kind)."""
        self.attempt = attempt
        self._sink = sink
        # A plain flag, not a threading.Event: set once from another thread, read in
        # tight loops, and an Event costs a lock and a condition per task.
        self._cancelled = False
        self._cancel_event = cancel_event
        """Optional: an Event another component sets (a worker's reader thread)."""
        self._current: Any = 0.0
        self._total: Any = None
        self._message: str | None = None
        self._sent: tuple[Any, Any, Any] = (self._current, None, None)
        """The values last sent (compared by identity: cheap, and safe with any type)."""
        self._poll = True
        """Check at the next ``progress()`` call (the first one reports at once)."""
        self._next_flush = 0.0
        self._clock = clock
        self._lines: TermLines | None = None
        """Made at the first write (most tasks print nothing)."""

    # -- what task code calls -------------------------------------------------
    def progress(self, current: float, total: float | None = _UNSET, message: str | None = None) -> None:
        """Record progress; raises :class:`TaskCancelled` once cancel was asked for.

        ``total=None`` means unknown; leaving it out keeps the last one given."""
        self._current = current
        if total is not _UNSET:
            self._total = total
        if message is not None:
            self._message = message
        if self._poll:
            self._check()

    def track(
        self, iterable: Iterable[T], total: float | None = None, message: str | None = None
    ) -> Iterator[T]:
        """Iterate over ``iterable`` while reporting progress (total from ``len()`` when it can)."""
        if total is None:
            try:
                total = float(len(iterable))  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self._current = 0
        self._total = total
        if message is not None:
            self._message = message
        self._check()
        # zip pulls an item, then a number: the counter says how many items were taken,
        # exactly, whenever the loop ends (exhausted, break, or an exception).
        counter = count()
        items = map(_first, zip(iterable, counter))
        return chain.from_iterable(self._chunks(items, counter))

    def cancelled(self) -> bool:
        """True once cancel was asked for: a cooperative check that never raises."""
        return self._cancelled or (self._cancel_event is not None and self._cancel_event.is_set())

    def log(self, text: str) -> None:
        """Append text to the task's log directly (stdout/stderr are captured anyway)."""
        lines = self._lines
        if lines is None:
            with _lines_lock:
                if self._lines is None:
                    self._lines = TermLines()
                lines = self._lines
        text = lines.feed(text)
        if text:
            self._sink.log(text)

    # -- what executors call --------------------------------------------------
    def request_cancel(self) -> None:
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()
        self._poll = True

    def bound(self) -> bool:
        """True while the task's code runs (the context is bound where it runs)."""
        return self in _pacer.live

    def poll(self) -> None:
        """Make the next ``progress()`` call check (cancel, and a report if one is due)."""
        self._poll = True

    def flush(self) -> None:
        """Send the latest progress now, if it changed since the last send.

        Values are cleaned here, once per send rather than on every ``progress()`` call
        (which must stay cheap): a ``current`` that is not a finite number is not sent,
        a ``total`` that is not one is sent as unknown. A cancel request (a worker's event)
        seen here makes the next ``progress()`` call raise, even between two pacer ticks."""
        if self._cancel_event is not None and self._cancel_event.is_set():
            self._poll = True
        current, total, message = self._current, self._total, self._message
        sent = self._sent
        if current is sent[0] and total is sent[1] and message is sent[2]:
            return
        self._sent = (current, total, message)
        value = finite(current)
        if value is None:
            return
        self._sink.progress(value, None if total is None else finite(total), message)

    def finish(self) -> None:
        """The task's code has ended: send its last progress, and the line that a carriage
        return held back (a bar's last frame)."""
        self.flush()
        with _lines_lock:
            lines = self._lines
            if lines is None:  # it wrote nothing: what comes later passes through
                self._lines = _ENDED
                return
        rest = lines.end()
        if rest:
            self._sink.log(rest)

    # -- inside -----------------------------------------------------------------
    def _check(self) -> None:
        # Lowered before the flags are read: a cancel request racing with this check
        # raises the flag again, so the next call sees it.
        self._poll = False
        if self._cancelled or (self._cancel_event is not None and self._cancel_event.is_set()):
            self._poll = True  # every later call raises too
            raise TaskCancelled()
        now = self._clock()
        if now >= self._next_flush:
            self._next_flush = now + FLUSH_INTERVAL
            self.flush()

    def _chunks(self, items: Iterator[T], counter: Iterator[int]) -> Iterator[Iterator[T]]:
        """The chunks ``track()`` chains, checking between two of them.

        ``next(counter)`` also moves the counter on, so ``peeks`` numbers read that way
        are taken off: the items taken so far are always ``next(counter) - peeks``."""
        size, done, peeks = 1, 0, 0
        mine = self._current  # what this loop reported last (track() set it)
        clock = self._clock
        started = clock()
        try:
            while True:
                yield islice(items, size)
                taken = next(counter) - peeks
                peeks += 1
                self._current = mine = taken
                if taken - done < size:  # a short chunk: the iterable is exhausted
                    self._check()
                    return
                done = taken
                now = clock()
                elapsed, started = now - started, now
                if elapsed > 0:
                    size = max(1, min(size * 4, MAX_CHUNK, int(size * CHECK_INTERVAL / elapsed)))
                else:
                    size = min(size * 4, MAX_CHUNK)
                self._check()
        finally:
            # Also when the loop stopped early (break, an exception in its body): what it
            # took; unless something reported since (an abandoned iterator collected later).
            if self._current is mine:
                self._current = next(counter) - peeks


class _Pacer:
    """Raises the ``_poll`` flag of every bound context every :data:`CHECK_INTERVAL`.

    One daemon thread per process, started with the first task bound, asleep (no wake-ups)
    while no task is bound. Binding is on every task's path (thread executor: ~10,000
    tasks/s), so it takes no lock: single dict operations are atomic, and a context is
    bound in one thread at a time."""

    def __init__(self) -> None:
        self.live: dict[TaskContext, None] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def add(self, ctx: TaskContext) -> None:
        self.live[ctx] = None
        if not self._wake.is_set():
            if self._thread is None:
                self._start()
            self._wake.set()

    def remove(self, ctx: TaskContext) -> None:
        self.live.pop(ctx, None)

    def forget_thread(self) -> None:
        """In a forked child: the thread did not come along (nor may a lock held mid-fork)."""
        self._thread = None
        self._wake = threading.Event()
        self._start_lock = threading.Lock()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bgtasks-pacer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(CHECK_INTERVAL)
            live = list(self.live)
            for ctx in live:
                ctx._poll = True
            if not live:
                self._wake.clear()
                if self.live:  # bound between the copy and the clear: keep going
                    self._wake.set()


_pacer = _Pacer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pacer.forget_thread)
_var: ContextVar[TaskContext | None] = ContextVar("bgtasks_task", default=None)
_get = _var.get


def current() -> TaskContext | None:
    """The context of the task running here (this thread), if any."""
    return _get()


def bind(ctx: TaskContext | None) -> TaskContext | None:
    """Make ``ctx`` this thread's context; returns the previous one to restore."""
    prev = _get()
    if prev is not ctx:
        _var.set(ctx)
        if prev is not None:
            _pacer.remove(prev)
        if ctx is not None:
            _pacer.add(ctx)
    return prev


def progress(current: float, total: float | None = _UNSET, message: str | None = None) -> None:
    """Report progress of the task running in this thread (no-op outside a task).

    Cheap: coalesced, safe to call millions of times. Raises :class:`TaskCancelled`
    once the task was asked to stop. ``total=None`` means unknown; leaving it out keeps
    the last one given."""
    # TaskContext.progress, inlined: one Python call per call is most of the cost.
    ctx = _get()
    if ctx is not None:
        ctx._current = current
        if total is not _UNSET:
            ctx._total = total
        if message is not None:
            ctx._message = message
        if ctx._poll:
            ctx._check()


def track(iterable: Iterable[T], total: float | None = None, message: str | None = None) -> Iterator[T]:
    """Like ``tqdm``: iterate while reporting progress. Plain iteration outside a task."""
    ctx = _get()
    if ctx is None:
        return iter(iterable)
    return ctx.track(iterable, total, message)


def cancelled() -> bool:
    """True when the task running in this thread was asked to stop (False outside a task)."""
    ctx = _get()
    return ctx is not None and ctx.cancelled()
