"""How an attempt's end becomes the task's next state: the one rule for it.

Pure functions of the task record (and the time), used by every path that ends an
attempt: an executor's report (:func:`after_attempt`), a server that stops under
running tasks, a start after a crash and a kernel that went away
(:func:`interrupted`, also through :func:`recover`). So a task ends the same way
whichever of them saw it end.

The rules:

- a failed attempt is retried (pending again, ``attempt + 1``, its error kept to show
  why) while ``attempt <= retries``, else the task ends ``failed``; a task that then
  finishes has no error;
- a timed-out attempt is a failed one with reason ``timeout``;
- a task whose cancel was asked for by a user ends ``cancelled`` (retries do not
  apply: it was stopped on purpose), also if it returned meanwhile (its result is
  partial);
- an attempt that stopped without anyone asking (the server stopped or crashed, the
  kernel it ran in went away) is a failed one with reason ``interrupted``;
- a pending task stays pending.
"""

from __future__ import annotations

from dataclasses import replace
from typing import AbstractSet as Set
from typing import Iterable

from .models import Task, TaskError
from .ports import Outcome, OutcomeStatus
from .states import State, advance

BY_USER = "cancelled"
"""``Task.cancel_reason`` of a cancel asked for by a user (REST, panel, widget, API)."""
BY_TIMEOUT = "timeout"
"""``Task.cancel_reason`` of a cancel made by the task's own timeout."""

INTERRUPTED = "the server stopped while the task ran"


def retry_or_fail(task: Task, error: TaskError, now: float, retry_at: float | None = None) -> Task:
    """A failed attempt: pending again (at ``retry_at``, when given) while retries
    remain, else ``failed``."""
    if task.attempt <= task.retries:
        return task.evolve(
            state=advance(task.state, State.PENDING), attempt=task.attempt + 1, error=error,
            started_at=None, cancel_reason=None,
            run_on=task.run_on if retry_at is None else retry_at,
        )
    return task.evolve(state=advance(task.state, State.FAILED), error=error, finished_at=now)


def cancelled(task: Task, now: float) -> Task:
    return task.evolve(state=advance(task.state, State.CANCELLED), finished_at=now)


def timed_out(task: Task) -> TaskError:
    return TaskError("TimeoutError", f"timed out after {task.timeout or 0:g} s", reason="timeout")


def interrupted(task: Task, now: float, message: str = INTERRUPTED) -> Task:
    """A live task whose attempt stopped without an outcome of its own: by the cancel
    that was under way, else as a failed attempt with reason ``interrupted``."""
    if task.state is State.PENDING:
        return task
    if task.state is State.CANCELLING:
        # Without a recorded reason (a record from before reasons were stored) a cancel
        # was a user's: the only other one, a timeout, says so.
        if task.cancel_reason == BY_TIMEOUT:
            return retry_or_fail(task, timed_out(task), now)
        return cancelled(task, now)
    return retry_or_fail(task, TaskError("Interrupted", message, reason="interrupted"), now)


def after_attempt(task: Task, outcome: Outcome, now: float, *, stopping: bool,
                  retry_at: float) -> Task:
    """The task once its running (or cancelling) attempt reported ``outcome``.
    ``stopping``: the server is stopping (an unasked-for cancel is its doing);
    ``retry_at``: when a retry would run (after the back-off)."""
    status = outcome.status
    if status is OutcomeStatus.FINISHED and task.state is State.RUNNING:
        # error=None: an earlier attempt's error (kept while it waited to retry) is not
        # the finished task's.
        return task.evolve(state=advance(task.state, State.FINISHED), finished_at=now,
                           result_preview=outcome.preview, error=None)
    if status is OutcomeStatus.FAILED:
        error = outcome.error or TaskError("Error", "the task failed")
        return retry_or_fail(task, error, now, retry_at)
    # Cancelled, or returned after a cancel was asked for (it saw cancelled(): partial).
    # What the stopped code said it left (``error.data``: a notebook job's executed copy)
    # stays on the record, under the timeout's error or the cancel's.
    data = outcome.error.data if outcome.error is not None else None
    if task.cancel_reason == BY_TIMEOUT:
        error = timed_out(task)
        return retry_or_fail(task, error if data is None else replace(error, data=data), now, retry_at)
    if task.cancel_reason is None and stopping and task.state is State.RUNNING:
        return interrupted(task, now)  # stopped by the server's shutdown, not by a request
    if data is not None and status is OutcomeStatus.CANCELLED:
        return cancelled(task, now).evolve(error=outcome.error)
    return cancelled(task, now)


def store_failed(task: Task, now: float, why: str) -> Task:
    """A task whose record the store refused to write ends ``failed`` with reason
    ``store_error`` (retrying would meet the same store). Also when the refused record
    was its end (say, a result too big to store): that end never became durable, so
    the store still holds it live, and from there the move to ``failed`` is checked."""
    error = TaskError("StoreError", why, reason="store_error")
    was = State.RUNNING if task.state.terminal else task.state
    return task.evolve(state=advance(was, State.FAILED), error=error, finished_at=now,
                       result_preview=None)


def _interrupted_unrecorded(task: Task, now: float) -> Task:
    """A pending record whose attempt had begun: as :func:`interrupted` for a running
    one (retried while retries remain, else failed), its state moving only to end."""
    error = TaskError("Interrupted", INTERRUPTED, reason="interrupted")
    if task.attempt <= task.retries:
        return task.evolve(attempt=task.attempt + 1, error=error)
    return task.evolve(state=advance(task.state, State.FAILED), error=error, finished_at=now)


def recover(tasks: Iterable[Task], now: float,
            started: Set[tuple[str, int]] = frozenset()) -> tuple[list[Task], list[Task]]:
    """What a start does with the live tasks a dead run left: returns the records that
    changed, and the pending tasks to run (re-queued ones among them). ``started``:
    (id, attempt) of attempts known to have begun although their record still says
    pending (the run died before it was stored): interrupted, like a running one."""
    changed: list[Task] = []
    pending: list[Task] = []
    for task in tasks:
        if task.state is State.PENDING and (task.id, task.attempt) in started:
            new = _interrupted_unrecorded(task, now)
        else:
            new = interrupted(task, now)
        if new is not task:
            changed.append(new)
        if new.state is State.PENDING:
            pending.append(new)
    return changed, pending
