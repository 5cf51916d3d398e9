"""Who hears of the engine's changes: task listeners in order, log listeners per commit.

Task listeners get every :class:`.models.TaskEvent`, numbered (``seq``), in the order the
changes were made: they are called under the engine's lock, from the thread that made
the change, so they must be quick and must not call back (the server hops to its loop
with ``call_soon_threadsafe``). The engine's :meth:`~.engine.Engine.snapshot` reads
``seq`` with the live set under that lock, so a listener that starts from a snapshot
misses and repeats nothing.

Log listeners get, once per committed batch on the writer thread, the ids of the tasks
whose logs that batch appended to: a reader woken by them finds the text stored.

Apart from the engine because it is a plain fan-out with its own rules; the lock is the
engine's, handed in.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from .models import Task, TaskEvent

log = logging.getLogger(__name__)

Listener = Callable[[TaskEvent], None]
LogListener = Callable[[set[str]], None]


class Listeners:
    """The engine's listeners and its event counter (``seq``)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._tasks: list[Listener] = []
        self._logs: list[LogListener] = []
        self.seq = 0
        """The number of the last event emitted (read and written under the lock)."""

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a task listener; returns the function that removes it."""
        return self._add(self._tasks, listener)

    def subscribe_logs(self, listener: LogListener) -> Callable[[], None]:
        """Add a log listener; returns the function that removes it."""
        return self._add(self._logs, listener)

    def _add(self, to: list[Callable[..., None]], listener: Callable[..., None]) -> Callable[[], None]:
        with self._lock:
            to.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in to:
                    to.remove(listener)

        return unsubscribe

    @property
    def hear_logs(self) -> bool:
        """Whether anyone listens to logs (a note per log write costs a call per batch)."""
        return bool(self._logs)

    def emit(self, change: str, task: Task) -> None:
        """Under the engine lock: number the change and tell every task listener."""
        self.seq += 1
        event = TaskEvent(self.seq, change, task)
        for listener in self._tasks:
            try:
                listener(event)
            except Exception:
                log.exception("task event listener failed")

    def logged(self, task_ids: set[str]) -> None:
        """On the writer thread: a committed batch appended to these tasks' logs."""
        for listener in list(self._logs) if task_ids else ():
            try:
                listener(task_ids)
            except Exception:
                log.exception("log listener failed")
