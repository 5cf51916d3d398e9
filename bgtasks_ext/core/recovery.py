"""What a start does with the tasks a previous run left unfinished.

A pure function of the stored live tasks: tasks that were running when their server
died are failed as ``interrupted``, or re-queued when they have retries left; a task
that was being cancelled is cancelled; pending tasks simply run.
"""

from __future__ import annotations

from typing import Iterable

from ..store.base import Op, PutTask
from .models import Task, TaskError
from .states import State, advance

INTERRUPTED = "the server stopped while the task ran"


def recover(tasks: Iterable[Task], now: float) -> tuple[list[Op], list[Task]]:
    """Return the writes that settle ``tasks`` and the pending tasks to run again."""
    ops: list[Op] = []
    pending: list[Task] = []
    for task in tasks:
        if task.state is State.PENDING:
            pending.append(task)
            continue
        error = TaskError("Interrupted", INTERRUPTED, reason="interrupted")
        if task.state is State.CANCELLING:
            task = task.evolve(state=advance(task.state, State.CANCELLED), finished_at=now)
        elif task.state is State.RUNNING and task.attempt <= task.retries:
            task = task.evolve(
                state=advance(task.state, State.PENDING),
                attempt=task.attempt + 1,
                error=error,
                started_at=None,
            )
            pending.append(task)
        else:
            task = task.evolve(state=advance(task.state, State.FAILED), error=error, finished_at=now)
        ops.append(PutTask(task))
    return ops, pending
