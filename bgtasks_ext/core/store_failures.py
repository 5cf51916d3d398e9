"""What the engine does when the store refuses a write: memory and store never disagree.

The writer commits in batches; a batch the store refuses (disk full, a locked or broken
file) comes back here on the writer thread, with the tasks it held:

- a task whose *creation* was refused never existed: its creator got the error, the live
  set forgets it and listeners hear ``deleted``;
- any other task ends ``failed`` with reason ``store_error`` (:func:`.policy.store_failed`),
  and its code, if it still runs, is cancelled;
- a task whose failure cannot be stored either is given up on: :meth:`Engine.wait` callers
  are released and this server shows its end from memory (``unstorable``); the next start,
  finding its stored record live, settles it as interrupted.

Apart from the engine because it is a path of its own, taken rarely; it changes states
only through the engine's ``apply`` (the one place a record's change lands), under the
engine's lock, which it is handed.
"""

from __future__ import annotations

import logging
import threading
from typing import AbstractSet, Callable, Iterable

from . import policy
from .models import Task
from .states import State

log = logging.getLogger(__name__)


class StoreFailures:
    """The engine's bookkeeping of refused writes. Every argument is the engine's own:
    its lock (as the condition :meth:`Engine.wait` waits on), its live and ended-but-
    unstored tasks, and its change functions."""

    def __init__(
        self,
        ended: threading.Condition,
        live: dict[str, Task],
        unstored: dict[str, Task],
        clock: Callable[[], float],
        apply: Callable[[Task], Task],
        drop: Callable[[Task], None],
        emit: Callable[[str, Task], None],
        cancel: Callable[[Task], None],
    ) -> None:
        self._ended = ended
        self._live = live
        self._unstored = unstored
        self._clock = clock
        self._apply = apply
        self._drop = drop
        self._emit = emit
        self._cancel = cancel
        self.failing: set[str] = set()
        """Tasks whose ``store_error`` failure is queued: refused again, they are given up."""
        self.unstorable: dict[str, Task] = {}
        """Ended tasks whose end the store refused twice: shown from memory."""

    def stored(self, task_ids: Iterable[str]) -> None:
        """Under the engine lock, after a commit: these tasks' records are stored."""
        if self.failing:
            self.failing.difference_update(task_ids)

    def refused(self, created: str | None, task_ids: AbstractSet[str], exc: BaseException) -> None:
        """On the writer thread: the store refused a batch holding ``task_ids``
        (``created``: the task whose creation it was, if any)."""
        if created is not None:
            with self._ended:
                task = self._live.get(created)
                if task is not None and task.state is State.PENDING:
                    self._drop(task)
                    self._emit("deleted", task)
                task_ids = task_ids - {created}
        if task_ids:
            self._fail(sorted(task_ids), f"the task store could not write it: {exc}")

    def _fail(self, task_ids: list[str], why: str) -> None:
        still_running: list[Task] = []
        with self._ended:
            now = self._clock()
            for task_id in task_ids:
                if task_id in self.failing:
                    # Even its failure could not be stored: stop trying, release waiters;
                    # this server shows the failure from memory (the next start, finding
                    # the stored record live, settles it as interrupted).
                    log.error("bgtasks: task %s could not be stored at all", task_id)
                    ended = self._unstored.pop(task_id, None)
                    if ended is not None:
                        self.unstorable[task_id] = ended
                    self.failing.discard(task_id)
                    self._ended.notify_all()
                    continue
                task = self._live.get(task_id) or self._unstored.get(task_id)
                if task is None:
                    continue
                self.failing.add(task_id)
                self._live[task_id] = task  # live again until its failure is stored
                self._apply(policy.store_failed(task, now, why))
                if task.state in (State.RUNNING, State.CANCELLING):
                    still_running.append(task)  # its code runs on: stop it
        for task in still_running:  # (outside the lock: executors call back into it)
            self._cancel(task)
