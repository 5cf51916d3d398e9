"""What a spec must be to become a task: its kind's parameters, where it may run, its
numbers. One function, :func:`admit`, used by the engine for every caller (REST, kernels,
Python), so no route can let through what another refuses.

Pure: it reads the registry and the executors' flags and builds the new
:class:`~.models.Task`; the engine makes it live and stores it.
"""

from __future__ import annotations

from typing import Any, Mapping

from .errors import InvalidInput
from .models import Scope, Task, TaskSpec, new_id
from .ports import Executor
from .registry import KindDef, KindRegistry
from .states import State


def _number(value: Any) -> bool:
    """A real number, as JSON has them: ``True`` is not 1 (bool is an int in Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def admit(spec: TaskSpec, kinds: KindRegistry, executors: Mapping[str, Executor],
          default_executor: str, default_timeout: float | None, now: float,
          task_id: str | None = None, server_id: str | None = None) -> Task:
    """The pending task ``spec`` asks for, or :class:`InvalidInput` naming the field.
    ``task_id``: an id made earlier by :func:`.models.new_id` and reserved for this task
    (the server's reservations, for a client that must show the id before its upload
    ends); a new one otherwise. ``server_id``: the server whose engine will hold it."""
    kdef = kinds.get(spec.kind)
    params = kdef.validate(spec.params)
    name, cwd = spec.name, spec.cwd
    if kdef.check is not None:
        # The kind's own rule (a notebook that must exist under the root): after the
        # schema, so it sees valid parameters; it may set the default name and the cwd.
        checked = kdef.check(params, kinds.site)
        params = checked.params
        if checked.cwd is not None:
            cwd = checked.cwd
        if not name and checked.name:
            name = checked.name
    executor = spec.executor or _default_executor(kdef, spec, executors, default_executor)
    if executor not in executors:
        raise InvalidInput("executor", f"{executor!r} is not one of {sorted(executors)}")
    check_placement(spec, kdef, executor, executors[executor])
    problem = executors[executor].unavailable()
    if problem is not None:
        raise InvalidInput("executor", problem)
    timeout = spec.timeout if spec.timeout is not None else default_timeout
    if timeout is not None and not (_number(timeout) and timeout > 0):
        raise InvalidInput("timeout", "must be a number of seconds above 0")
    if isinstance(spec.retries, bool) or not isinstance(spec.retries, int) or not 0 <= spec.retries <= 100:
        raise InvalidInput("retries", "must be a whole number from 0 to 100")
    if spec.run_on is not None and not _number(spec.run_on):
        raise InvalidInput("run_on", "must be a time")
    if spec.key is not None and (not isinstance(spec.key, str) or not spec.key):
        raise InvalidInput("key", "must be a non-empty string")
    if spec.name is not None and not isinstance(spec.name, str):
        raise InvalidInput("name", "must be a string")
    if spec.scheduled_for is not None and not _number(spec.scheduled_for):
        raise InvalidInput("scheduled_for", "must be a time")
    return Task(
        id=task_id or new_id(),
        kind=kdef.name,
        name=name or kdef.name,
        params=params,
        state=State.PENDING,
        created_at=now,
        executor=executor,
        run_on=spec.run_on,
        owner=spec.owner,
        origin=spec.origin,
        key=spec.key,
        scope=Scope(spec.scope),
        schedule_id=spec.schedule_id,
        scheduled_for=spec.scheduled_for,
        server_id=server_id,
        retries=spec.retries,
        timeout=timeout,
        python=spec.python,
        cwd=cwd,
        has_payload=spec.payload is not None,
    )


def _default_executor(kdef: KindDef, spec: TaskSpec, executors: Mapping[str, Executor],
                      default: str) -> str:
    """``default``, unless the task carries user data and that executor runs in the
    server process: then the first configured executor that may load it."""
    carries_data = kdef.needs_payload or spec.payload is not None
    if not carries_data or not executors[default].in_server_process:
        return default
    for name, ex in executors.items():
        if not ex.in_server_process and not ex.in_kernel:
            return name
    return default  # refused by check_placement, by name


def check_placement(spec: TaskSpec, kdef: KindDef, executor: str, ex: Executor) -> None:
    """The rules of where a task can run."""
    if (kdef.needs_payload or spec.payload is not None) and ex.in_server_process:
        # The server never unpickles user data: only workers and kernels load payloads.
        raise InvalidInput("executor", f"{executor!r} runs tasks in the server process, which "
                           f"never loads user data: a {kdef.name!r} task with a payload runs on "
                           "a worker ('process') or in its kernel ('kernel')")
    if ex.in_kernel:
        if not spec.origin.kernel_id:
            raise InvalidInput("executor", f"{executor!r} needs origin.kernel_id: the kernel "
                               "that will run the task")
        if spec.retries:
            raise InvalidInput("retries", f"a task of the {executor!r} executor runs once: "
                               "its kernel cannot run it again")
    elif kdef.needs_payload and spec.payload is None:
        raise InvalidInput("payload", f"a {kdef.name!r} task needs a payload (sent by "
                           "%%bgtask or bgtasks_ext.submit)")
