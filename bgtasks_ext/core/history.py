"""Changes to ended tasks' records: a note set after the end, a removal from history.

An ended task is no longer in the engine's live set, so no state change races these;
what they race is each other (a note arriving as the task is deleted must not write the
record back) and the task's own end still on its way to the store (its record is then
in the engine's memory, ``unstored``, or ``unstorable`` when the store refused it). One
lock of their own serializes them; the engine lock is taken only briefly, to read that
memory and to tell listeners in order with every other event.

No state changes here: a note leaves the state as it is, and a delete removes a record.
A live task's note and a live task's delete (a cancel) stay in the engine.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from .models import Task
from .ports import DeleteTask, Op, PutTask


class History:
    """The engine's ended-task changes. Arguments are the engine's own: its lock, its
    memory of ended tasks (``unstored``, ``unstorable``), ``get`` (memory, then store),
    ``commit`` (queue ops and wait until they are durable) and ``emit`` (listeners)."""

    def __init__(
        self,
        lock: threading.RLock,
        unstored: dict[str, Task],
        unstorable: dict[str, Task],
        get: Callable[[str], Task],
        commit: Callable[[Sequence[Op]], None],
        emit: Callable[[str, Task], None],
    ) -> None:
        self._lock = lock
        self._unstored = unstored
        self._unstorable = unstorable
        self._get = get
        self._commit = commit
        self._emit = emit
        self._history = threading.Lock()
        """Serializes the changes of ended tasks' records (a note, a delete)."""

    def delete(self, task_id: str) -> None:
        """Remove an ended task from history; returns once the removal is durable."""
        with self._history:
            task = self._get(task_id)
            self._commit([DeleteTask(task_id)])
            with self._lock:
                self._emit("deleted", task)

    def set_note(self, task_id: str, note: str | None) -> Task:
        """Set an ended task's note (already checked); returns it once durable.
        Serialized with :meth:`delete`, so a note revives no deleted task."""
        with self._history:
            with self._lock:
                ended = self._unstored.get(task_id) or self._unstorable.get(task_id)
            task = (ended or self._get(task_id)).evolve(note=note)
            with self._lock:
                for memory in (self._unstored, self._unstorable):
                    if task_id in memory:  # (not once stored meanwhile)
                        memory[task_id] = task
            self._commit([PutTask(task)])
            with self._lock:
                self._emit("note", task)
        return task
