"""Retry: a new task from an ended one's stored spec and input (``POST tasks/{id}/retry``).

The server keeps everything a task was created with (kind, parameters, name, executor,
timeout, retries, interpreter, working directory, origin, scope, key) and its input bytes,
so it can run any ended task again on its own, a ``%%bgtask`` cell included: the cell's
pickled job is the stored input, and no kernel is needed to make it again. The rule lives
here, pure (:func:`retry_spec`); :meth:`.engine.Engine.retry_spec` reads the task and its
input and hands the spec to ``create`` like any other caller, so a retry meets every rule
a create does (a live ``key`` holder is returned instead of a second task).

What cannot be retried, and why:

- a live task (409): it may still finish; cancel it first, or wait;
- a task of an executor that runs in its kernel (409): its code lives in that kernel's
  namespace and only that kernel can run it: run the cell again;
- a task whose stored input is gone (410): nothing is left to run;
- a kind or executor this server does not have (any more) (409).
"""

from __future__ import annotations

from dataclasses import replace

from .errors import BgTasksError, Conflict
from .models import Scope, Task, TaskSpec


class InputGone(BgTasksError):
    """The input bytes a task ran with are no longer stored: it cannot run again."""

    status = 410

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} cannot be retried: its stored input is no longer "
                         "kept (run the cell or submit() again)")


def retry_spec(
    task: Task,
    payload: bytes | None,
    *,
    in_kernel: bool | None,
    kind_known: bool = True,
    owner: str | None = None,
    kernel_alive: bool = False,
) -> TaskSpec:
    """The spec of a new run of ``task`` (an ended task), with ``payload`` its stored input.

    ``in_kernel``: whether the task's executor runs tasks inside their kernel (refused;
    ``None``: this server has no such executor). ``kind_known``: this server has the kind.
    ``owner``: who asks (default: the task's owner). ``kernel_alive``: whether the kernel in
    ``task.origin.kernel_id`` still runs; a ``scope: kernel`` task keeps its scope only
    then, since a kernel already gone could never cancel it.

    The new task starts now (no ``run_on``), at attempt 1, and is not one of a schedule's
    runs (no ``schedule_id``): a person asked for it. ``origin.retry_of`` names ``task``."""
    if not task.terminal:
        raise Conflict(f"task {task.id} is {task.state.value}: only a finished, failed or "
                       "cancelled task can be retried (cancel it first)")
    if in_kernel is None or not kind_known:
        what = f"executor {task.executor!r}" if in_kernel is None else f"kind {task.kind!r}"
        raise Conflict(f"task {task.id} cannot be retried here: {what} is not configured on "
                       "this server")
    if in_kernel:
        raise Conflict(f"task {task.id} ran in its kernel (executor {task.executor!r}): its code "
                       "lives in that kernel, so the server cannot run it again; run the cell "
                       "again in its notebook")
    if task.has_payload and payload is None:
        raise InputGone(task.id)
    scope = task.scope
    if scope is Scope.KERNEL and not (task.origin.kernel_id and kernel_alive):
        scope = Scope.SERVER
    return TaskSpec(
        kind=task.kind,
        params=dict(task.params),
        name=task.name,
        key=task.key,
        executor=task.executor,
        scope=scope,
        timeout=task.timeout,
        retries=task.retries,
        owner=task.owner if owner is None else owner,
        origin=replace(task.origin, retry_of=task.id),
        payload=payload if task.has_payload else None,
        python=task.python,
        cwd=task.cwd,
    )
