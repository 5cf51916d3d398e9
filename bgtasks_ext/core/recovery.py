"""What a server does with the live tasks of a server that is gone: the orphans.

Which tasks are orphans is the store's answer (:meth:`.ports.Store.adopt_orphans`: those
of no server, or of a server whose lease lapsed), never "every live task": another
server running on the same store keeps its tasks. An engine asks at its start and at
each heartbeat (:mod:`.leases`), and settles what it gets by the one rule for an
attempt that stopped without an outcome (:func:`.policy.recover`): running ones end as
interrupted (re-queued while retries remain), pending ones run here.

Pure: the engine applies what these functions decide.
"""

from __future__ import annotations

from typing import AbstractSet as Set
from typing import Container, Mapping

from . import policy
from .models import Task, TaskError
from .ports import Executor

DUPLICATE_KEY = "duplicate_key"
"""``TaskError.reason`` of an adopted task whose key a live task here holds already."""


def settle(orphans: list[Task], now: float,
           started: Set[tuple[str, int]] = frozenset()) -> tuple[list[Task], list[Task]]:
    """The records of ``orphans`` that change, and the pending tasks to run here."""
    return policy.recover(orphans, now, started)


def unavailable(task: Task, executors: Mapping[str, Executor], kinds: Container[str],
                keys: Mapping[str, str]) -> TaskError | None:
    """Why an adopted pending task cannot run on this server (``None``: it can).
    ``keys``: the live tasks' keys here (a singleton adopted from a dead server meets
    the one this server started meanwhile: the one here stays)."""
    if task.key is not None and keys.get(task.key, task.id) != task.id:
        return TaskError("DuplicateKey", f"a live task with key {task.key!r} runs on this "
                         "server already", reason=DUPLICATE_KEY)
    if task.executor not in executors:
        problem = f"executor {task.executor!r} is not configured on this server"
    elif task.has_payload and executors[task.executor].in_server_process:
        problem = (f"executor {task.executor!r} runs tasks in the server process, which never "
                   "loads user data (a task stored by an older version)")
    elif task.kind not in kinds:
        problem = f"kind {task.kind!r} is not registered on this server"
    else:
        return None
    return TaskError("Unavailable", problem, reason="unavailable")
