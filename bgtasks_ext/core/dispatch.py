"""Getting a pending task to its executor: now, at its ``run_on`` time, or after a
retry's back-off; and the per-task timers that go with an attempt.

One hand-off (:meth:`Dispatch.hand_off`) serves every path: a new task once its first
write commits, a timer's due, a task recovered or adopted from a server that is gone.
A task is handed off *pending*: the executor's ``claim`` (pending -> running, in the
engine) is the check that counts, so a task cancelled meanwhile is simply not run.

Apart from the engine because none of it changes a task's state; it reads the engine's
live set under the engine's lock, which it is handed, and keeps the timers of each task
so that the engine can drop them when the task ends or is retried.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from .models import Task
from .ports import Executor, Job, Store
from .registry import KindRegistry
from .states import State
from .timers import Timer, Timers

_NO_SETTINGS: Mapping[str, Any] = {}
"""The settings of a kind that has none (shared: jobs only read them)."""


class Dispatch:
    """The engine's hand-offs and task timers. Arguments are the engine's own: its lock
    and live set, where jobs go (store for inputs, executors, kinds), its run's timers,
    and whether it has started (``started``) and is not stopping either (``running``)."""

    def __init__(
        self,
        lock: threading.RLock,
        live: dict[str, Task],
        store: Store,
        executors: Mapping[str, Executor],
        kinds: KindRegistry,
        max_result_bytes: int,
        clock: Callable[[], float],
        timers: Callable[[], Timers | None],
        started: Callable[[], bool],
        running: Callable[[], bool],
        kind_settings: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._lock = lock
        self._live = live
        self._store = store
        self._executors = executors
        self._kinds = kinds
        self._max_result_bytes = max_result_bytes
        self._clock = clock
        self._timers = timers
        self._started = started
        self._running = running
        self._by_task: dict[str, list[Timer]] = {}
        self._settings = kind_settings if kind_settings is not None else {}

    def timer(self, task_id: str, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` in ``delay`` seconds unless the task's timers are dropped first."""
        timers = self._timers()
        assert timers is not None
        timer = timers.after(delay, fn, *args)
        with self._lock:
            self._by_task.setdefault(task_id, []).append(timer)

    def drop_timers(self, task_id: str) -> None:
        """Under the engine lock: the task ended or is retried; its timers are void."""
        for timer in self._by_task.pop(task_id, ()):
            timer.cancel()

    def schedule(self, task_id: str) -> None:
        """Hand a pending task to its executor now, or at its ``run_on`` time."""
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or not self._started():
                return
        self.start_or_wait(task, self._clock())

    def due(self, task_id: str, attempt: int) -> None:
        """A timer's due: start the task if it is still that pending attempt."""
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or task.attempt != attempt:
                return
            if not self._running():
                return
        self.hand_off(task)

    def start_or_wait(self, task: Task, now: float) -> None:
        delay = (task.run_on or 0) - now
        if delay > 0:
            self.timer(task.id, delay, self.due, task.id, task.attempt)
        else:
            self.hand_off(task)

    def hand_off(self, task: Task) -> None:
        """Give a pending task's job to its executor. Never under the engine lock: the
        payload is read from the store, and an executor may start the job (and call
        ``claim``) in this very thread — from the writer thread, right after the task's
        commit, that saves a thread hop on every task."""
        payload = self._store.get_blob(task.id, "input") if task.has_payload else None
        kdef = self._kinds.get(task.kind)
        self._executors[task.executor].submit(Job(
            task_id=task.id, kind=task.kind, ref=kdef.ref,
            params=task.params, payload=payload, python=task.python, cwd=task.cwd,
            attempt=task.attempt, max_result_bytes=self._max_result_bytes,
            settings=self._settings.get(task.kind, _NO_SETTINGS), warm=kdef.warm,
        ))
