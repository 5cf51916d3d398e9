"""The Python API of the notebook side: ``submit``, ``schedule``, ``attach``, ``connect``,
``run_notebook``.

``submit(fn, ...)`` ships a call to a worker running this kernel's own interpreter, in
its working directory (cloudpickle: functions defined in the notebook travel by value).
:func:`launch` is the one place that turns a :class:`~bgtasks_ext.kinds.code.CodeJob`
into a task, shared with the ``%%bgtask`` magic: it fills in where the task comes from
(this kernel, this notebook) and, for ``executor="kernel"``, starts the thread that
runs it here with live objects. :func:`create_schedule` does the same for a schedule
(``%%bgtask --every``, :func:`schedule`): the job is pickled once, at creation, and
every run gets those bytes. :func:`launch_notebook` makes a ``notebook`` task (shared
with ``%bgtask --notebook``); the path it is given is already relative to the server's
root (:mod:`.notebook_jobs`).
"""

from __future__ import annotations

import json
import os
import sys
import socket
from collections.abc import Mapping
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import cloudpickle

from ..core.errors import InvalidInput
from ..kinds.code import CodeJob
from .celllines import locate
from .client import Client, TaskDict, connect, get_client
from .handle import TaskHandle
from .notebook_jobs import root_relative

if TYPE_CHECKING:
    from .schedules import ScheduleHandle

__all__ = ["attach", "connect", "create_schedule", "kernel_id", "launch", "launch_notebook",
           "run_notebook", "schedule", "submit"]

KERNEL_PLACEHOLDER = CodeJob(mode="cell", source="", filename="<kernel executor>")
"""What a kernel-executor task stores as its payload: the real job stays in this
kernel (it may hold objects that cannot be pickled, which is why it runs here)."""


NO_SCHEDULED_EXECUTOR = (
    "{executor!r} cannot run a schedule's notebook code: runs use 'process' (a worker with "
    "this kernel's interpreter), since a kernel executor's kernel may be gone or busy when "
    "it fires and the server's threads never load notebook data")


SEND_IN_BACKGROUND = 4 << 20
"""Bytes of pickled input from which a task is sent by a thread: the cell returns as
soon as its inputs are pickled, and the widget shows the bytes going out. Below it, the
``POST`` takes milliseconds and a refusal is raised in the cell itself."""


def kernel_id() -> str | None:
    """This kernel's id on its server, from its connection file name
    (``kernel-<id>.json``, as Jupyter Server names them). A kernel started some other
    way (nbclient, a console pointed at a server with ``connect()``) gets an id of its
    own, stable for its process, so its tasks still know where they came from; None
    outside a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-"):-len(".json")]
    return _LOCAL_ID


_LOCAL_ID = f"local-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _user_namespace() -> dict[str, Any] | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    return None if ip is None else ip.user_ns  # type: ignore[no-any-return]


def launch(job: CodeJob, *, name: str | None = None, key: str | None = None,
           executor: str | None = None, scope: str | None = None, timeout: float | None = None,
           retries: int | None = None, namespace: dict[str, Any] | None = None,
           client: Client | None = None,
           on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None) -> TaskHandle:
    """Create a ``code`` task for ``job`` and return its handle.

    ``namespace`` is where a kernel-executor cell runs (default: the user namespace).
    Raises :class:`~.client.NoServer` without a server, :class:`~.client.ServerError`
    when the server refuses the task (for inputs of :data:`SEND_IN_BACKGROUND` bytes or
    more, sent by a thread, a refusal ends the handle ``failed`` instead). Pickling
    errors of ``job`` propagate (the magic checks its inputs one by one before, to name
    the culprit)."""
    client = client or get_client()
    kernel = executor == "kernel"
    locate(job)  # the notebook's cell names and lines, for its traceback (celllines.py)
    # Pickled here, in the caller's thread: the inputs are frozen as they are now.
    payload = cloudpickle.dumps(KERNEL_PLACEHOLDER if kernel else job)
    fields: dict[str, Any] = dict(
        kind="code", params={}, name=name, key=key, executor=executor, scope=scope,
        timeout=timeout, retries=retries, python=sys.executable, cwd=os.getcwd(),
        origin=_origin(),
    )
    if not kernel and len(payload) >= SEND_IN_BACKGROUND:
        # Asked now, in a few ms: a refusal (a bad option, inputs over the server's
        # limit) raises here, in the cell, rather than failing the handle later.
        # The id is reserved too: the cell's output carries it at once, so the browser
        # shows the task from the server as soon as it exists.
        reserved = client.check(payload_size=len(payload), reserve=True, **fields)
        return TaskHandle.sending(
            client, lambda on_sent: client.create(payload=payload, on_sent=on_sent,
                                                  reserved=reserved, **fields),
            size=len(payload), name=name or "code", on_finish=on_finish, reserved=reserved)
    task = client.create(payload=payload, **fields)
    if kernel and task.get("state") == "pending":
        from .runner import run_in_kernel

        run_in_kernel(client, task["id"], job, namespace if namespace is not None else _user_namespace())
    handle = TaskHandle(task["id"], client, on_finish=on_finish, task=task)
    handle.sent_bytes = len(payload)
    return handle


def _origin() -> dict[str, Any]:
    return {"kernel_id": kernel_id(), "path": os.environ.get("JPY_SESSION_NAME")}


def create_schedule(job: CodeJob, *, every: float | None = None, cron: str | None = None,
                    tz: str | None = None, name: str | None = None, start_at: Any = None,
                    end_at: Any = None, overlap: str | None = None, misfire: str | None = None,
                    executor: str | None = None, timeout: float | None = None,
                    retries: int | None = None, note: str = "",
                    client: Client | None = None) -> ScheduleHandle:
    """Create a schedule whose runs are ``code`` tasks running ``job`` (``POST
    schedules``) and return its handle. ``job`` is pickled here, now: every run gets
    its inputs as they are at this moment. ``start_at``/``end_at``: a ``datetime``,
    seconds since 1970 or an ISO 8601 string. Raises :class:`~.client.ServerError`
    (400 naming the field) when the server refuses it; nothing is created then."""
    if executor in ("kernel", "thread"):
        raise InvalidInput("executor", NO_SCHEDULED_EXECUTOR.format(executor=executor))
    client = client or get_client()
    locate(job)
    payload = cloudpickle.dumps(job)
    reply = client.create_schedule(
        kind="code", params={}, name=name, every=every, cron=cron, timezone=tz,
        start_at=_when(start_at), end_at=_when(end_at), overlap=overlap, misfire=misfire,
        executor=executor, timeout=timeout, retries=retries, python=sys.executable,
        cwd=os.getcwd(), origin=_origin(), payload=payload)
    from .schedules import ScheduleHandle  # ipywidgets: not at import (workers import this package)

    return ScheduleHandle(reply, client, note=note)


def _when(value: Any) -> Any:
    """A ``datetime`` as ISO 8601 (naive: this kernel's local time); others as given."""
    from datetime import datetime

    if isinstance(value, datetime):
        return (value if value.tzinfo else value.astimezone()).isoformat()
    return value


def schedule(fn: Callable[..., Any], *args: Any, every: float | None = None,
             cron: str | None = None, tz: str | None = None, name: str | None = None,
             start_at: Any = None, end_at: Any = None, overlap: str | None = None,
             misfire: str | None = None, executor: str | None = None,
             timeout: float | None = None, retries: int | None = None,
             **kwargs: Any) -> ScheduleHandle:
    """Run ``fn(*args, **kwargs)`` every ``every`` seconds, or at the times of ``cron``
    (five fields, read in time zone ``tz``, UTC by default), in a worker, until the
    schedule is disabled or deleted; returns its :class:`ScheduleHandle`.

    ``fn`` and its arguments are pickled now (functions defined in the notebook travel
    by value): each run calls them as they were. Each run is a task; its value is that
    task's result (``h.runs()``, then ``bgtasks_ext.attach(run["id"]).result()``).
    ``overlap``: ``skip`` (default), ``queue`` or ``allow``; ``misfire``: ``coalesce``
    (default) or ``skip``; ``executor``: ``process`` (the only one that runs notebook
    code on a schedule: a ``kernel`` executor's kernel may be gone when it fires).
    """
    job = CodeJob(mode="call", fn=fn, args=args, kwargs=kwargs)
    label = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return create_schedule(job, every=every, cron=cron, tz=tz, name=label, start_at=start_at,
                           end_at=end_at, overlap=overlap, misfire=misfire, executor=executor,
                           timeout=timeout, retries=retries,
                           note=f"each run calls {label} with the arguments it was given at creation")


def submit(fn: Callable[..., Any], *args: Any, name: str | None = None, key: str | None = None,
           executor: str | None = None, scope: str | None = None, timeout: float | None = None,
           retries: int | None = None, **kwargs: Any) -> TaskHandle:
    """Run ``fn(*args, **kwargs)`` in the background; ``handle.result()`` is its value.

    ``executor``: ``process`` (the server's default: a worker with this kernel's
    interpreter and working directory), ``thread``, or ``kernel`` (a thread in this
    kernel: sees live objects). ``scope="kernel"`` cancels it when this kernel goes.
    """
    job = CodeJob(mode="call", fn=fn, args=args, kwargs=kwargs)
    label = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return launch(job, name=label, key=key, executor=executor, scope=scope, timeout=timeout,
                  retries=retries)


def launch_notebook(path: str, parameters: Mapping[str, Any] | None = None, *,
                    kernel_name: str | None = None, cwd: str | None = None,
                    name: str | None = None, key: str | None = None,
                    executor: str | None = None, scope: str | None = None,
                    timeout: float | None = None, retries: int | None = None,
                    client: Client | None = None) -> TaskHandle:
    """Create a ``notebook`` task for ``path`` and ``cwd``, both already relative to the
    server's root; its handle. Raises :class:`~.client.ServerError` with the server's
    400 (naming ``params.path``, ``params.parameters.<name>``...) when it refuses;
    nothing is created then."""
    params: dict[str, Any] = {"path": path, "parameters": _parameters(parameters)}
    if kernel_name is not None:
        params["kernel_name"] = kernel_name
    if cwd is not None:
        params["cwd"] = cwd
    client = client or get_client()
    task = client.create(kind="notebook", params=params, name=name, key=key, executor=executor,
                         scope=scope, timeout=timeout, retries=retries, origin=_origin())
    return TaskHandle(task["id"], client, task=task)


def _parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters as JSON carries them; what JSON cannot carry is refused here,
    naming it (rather than as a ``TypeError`` from deep inside the request)."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise InvalidInput("parameters", f"must be a dict of name -> value, not {type(parameters).__name__}")
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if not isinstance(key, str):
            raise InvalidInput("parameters", f"{key!r}: names must be strings")
        try:
            out[key] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise InvalidInput(f"parameters.{key}", f"a {type(value).__name__} cannot be a notebook "
                               "parameter (JSON values can: numbers, strings, booleans, None, "
                               "lists and dicts of them)") from None
    return out


def run_notebook(path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None, *,
                 kernel_name: str | None = None, cwd: str | os.PathLike[str] | None = None,
                 name: str | None = None, timeout: float | None = None) -> TaskHandle:
    """Run the notebook at ``path`` as a background job (the ``notebook`` kind) and
    return its handle (displayed, it is the task's widget).

    ``path`` is relative to this kernel's working directory (or absolute) and must be
    under the server's root directory. ``parameters`` (JSON values) are set in a cell
    after the notebook's cell tagged ``parameters``. ``kernel_name``: default the
    notebook's own kernelspec. ``cwd``: the job kernel's working directory (relative to
    this kernel's, under the root; default the notebook's folder). ``name``: default the
    file name. ``timeout``: seconds before the job is stopped.

    ``h.result()`` is ``{"executed_copy": <path relative to the root>, "cells": n,
    "kernel_name": ...}``; the executed copy is written beside the notebook, also when a
    cell fails (``h.error["data"]["executed_copy"]``)."""
    client = get_client()  # no server: say that first, not that the root is unknown
    rel = root_relative(path, "path")
    rel_cwd = None if cwd is None else root_relative(cwd, "cwd")
    return launch_notebook(rel, parameters, kernel_name=kernel_name, cwd=rel_cwd, name=name,
                           timeout=timeout, client=client)


def attach(task_id: str) -> TaskHandle:
    """The handle of any task (launched here, elsewhere, or before a kernel restart).

    In a notebook, a ``%%bgtask`` cell's task sets its outputs in this namespace when it
    ends (between cells, as if launched here); for anything else the widget says why
    nothing is set (another kind, a call, a kernel-executor cell, a pruned result)."""
    from .landing import landing_for
    from .outputs import CellOutputs

    landing = landing_for()
    hook = None if landing is None else CellOutputs(landing, attached=True)
    return TaskHandle(task_id, get_client(), on_finish=hook)
