"""The kernel watcher: tasks tied to a kernel end when that kernel goes away.

When a kernel this server runs shuts down, restarts or dies:

- its live tasks of the ``kernel`` executor end: a running one fails with reason
  ``interrupted`` (its thread went with the kernel), one being cancelled ends
  cancelled, a pending one is cancelled (nobody is left to claim it);
- its live ``scope: kernel`` tasks on any other executor are cancelled.

Two sources, for speed and for certainty: jupyter_server's ``kernel_actions`` events
(a shutdown or restart through the kernel manager, announced once it is done) and a
poll of the kernel manager every ``interval`` seconds, which sees kernels vanish, die
(their process exited: the auto-restarter only notices after its heartbeat period) and
come back as a new process under the same id. Each kernel is known by its process: one
death is acted on once, and the tasks a restarted kernel launches afterwards are its
new process's, left alone.

Only kernels this server has seen are watched: a kernel elsewhere that was pointed at
this server with ``bgtasks_ext.connect()`` is not ours to judge. At start, the live
tasks of kernels the server does not run (left by a previous server, whose kernels
died with it) are ended the same way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jupyter_core.utils import ensure_async

from ..core.engine import Engine
from ..core.errors import BgTasksError
from ..core.models import Scope, Task
from ..core.states import State

log = logging.getLogger(__name__)

KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"


def end_kernel_tasks(engine: Engine, kernel_id: str, how: str) -> list[str]:
    """End the live tasks tied to ``kernel_id``, which ``how`` ("shut down", "restarted",
    "died"...); returns their ids. Thread-safe; only public engine calls."""
    ended = []
    for task in engine.live_tasks():
        if task.origin.kernel_id != kernel_id:
            continue
        if not _in_kernel(engine, task) and task.scope is not Scope.KERNEL:
            continue
        try:
            _end(engine, task, how)
        except BgTasksError:  # it ended meanwhile
            continue
        ended.append(task.id)
    return ended


def _in_kernel(engine: Engine, task: Task) -> bool:
    executor = engine.executors.get(task.executor)
    return executor is not None and executor.in_kernel


def _end(engine: Engine, task: Task, how: str) -> None:
    # A task that ran in the kernel went with it: the engine's policy says how it ends
    # (a cancel under way completes, a timeout stays a timeout, else interrupted).
    # Anything else tied to the kernel (scope kernel, or nobody left to claim it) is
    # cancelled.
    if _in_kernel(engine, task) and task.state is not State.PENDING:
        engine.interrupt(task.id, f"the kernel went away ({how}) while the task ran in it")
    else:
        engine.cancel(task.id)


def _process(km: Any) -> Any:
    """What identifies the current process of a kernel (``None`` while it has none)."""
    provisioner = getattr(km, "provisioner", None)
    if provisioner is None:
        return None
    process = getattr(provisioner, "process", None)
    return process if process is not None else getattr(provisioner, "pid", None)


class KernelWatcher:
    """Watches ``kernel_manager`` (jupyter_server's) on the server's event loop."""

    def __init__(self, engine: Engine, kernel_manager: Any, event_logger: Any = None,
                 interval: float = 1.0) -> None:
        self.engine = engine
        self.kernel_manager = kernel_manager
        self.event_logger = event_logger
        self.interval = interval
        self._process: dict[str, Any] = {}
        """Each watched kernel's process as last seen."""
        self._down: set[str] = set()
        """Kernels whose current process was already acted on (dead, or none yet)."""
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._look()
        orphans = {t.origin.kernel_id for t in self.engine.live_tasks()
                   if t.origin.kernel_id and t.origin.kernel_id not in self._process
                   and (_in_kernel(self.engine, t) or t.scope is Scope.KERNEL)}
        for kernel_id in sorted(orphans, key=str):
            await self._act(str(kernel_id), "gone before this server started")
        if self.event_logger is not None:
            self.event_logger.add_listener(schema_id=KERNEL_ACTIONS, listener=self._on_event)
        self._poller = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self.event_logger is not None:
            try:
                self.event_logger.remove_listener(schema_id=KERNEL_ACTIONS, listener=self._on_event)
            except Exception:  # noqa: BLE001 - never registered, or the logger is gone
                pass
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass
            self._poller = None

    # -- sources ---------------------------------------------------------------------
    async def _on_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        kernel_id = data.get("kernel_id")
        if data.get("status") != "success" or not kernel_id:
            return
        action = data.get("action")
        if action == "start":
            self._look()
        elif action == "shutdown":
            await self._gone(kernel_id, "shut down")
        elif action == "restart":
            await self._changed(kernel_id, "restarted")

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:
                log.exception("bgtasks: watching kernels failed")
            await asyncio.sleep(self.interval)

    async def poll(self) -> None:
        """One look at every kernel: vanished, replaced by a new process, or dead."""
        ids = self._look()
        for kernel_id in list(self._process):
            if kernel_id not in ids:
                await self._gone(kernel_id, "shut down")
        for kernel_id in ids:
            km = self._kernel(kernel_id)
            if km is None:
                continue
            if _process(km) != self._process.get(kernel_id):
                await self._changed(kernel_id, "restarted")
                continue
            if kernel_id in self._down:
                continue
            process = self._process[kernel_id]
            alive = await ensure_async(km.is_alive())
            # Still the process we asked about, and nobody acted meanwhile?
            if (not alive and kernel_id not in self._down
                    and _process(km) == process == self._process.get(kernel_id)):
                self._down.add(kernel_id)
                await self._act(kernel_id, "died")

    # -- bookkeeping ---------------------------------------------------------------------
    def _kernel(self, kernel_id: str) -> Any:
        try:
            return self.kernel_manager.get_kernel(kernel_id)
        except KeyError:
            return None

    def _look(self) -> list[str]:
        """The current kernel ids; newly seen kernels start being watched."""
        ids = list(self.kernel_manager.list_kernel_ids())
        for kernel_id in ids:
            if kernel_id not in self._process:
                km = self._kernel(kernel_id)
                if km is not None:
                    self._note(kernel_id, _process(km))
        return ids

    def _note(self, kernel_id: str, process: Any) -> None:
        self._process[kernel_id] = process
        if process is None:
            self._down.add(kernel_id)
        else:
            self._down.discard(kernel_id)

    async def _gone(self, kernel_id: str, how: str) -> None:
        # Also for a kernel not seen yet (started and shut down between two polls): the
        # event says it was this server's.
        acted = kernel_id in self._down
        self._process.pop(kernel_id, None)
        self._down.discard(kernel_id)
        if not acted:
            await self._act(kernel_id, how)

    async def _changed(self, kernel_id: str, how: str) -> None:
        """The kernel has another process now (or none, mid-restart)."""
        km = self._kernel(kernel_id)
        if km is None:
            await self._gone(kernel_id, how)
            return
        process = _process(km)
        if kernel_id in self._process and process == self._process[kernel_id]:
            return  # seen already
        acted = kernel_id in self._down or kernel_id not in self._process
        self._note(kernel_id, process)
        if not acted:
            await self._act(kernel_id, how)

    async def _act(self, kernel_id: str, how: str) -> None:
        loop = asyncio.get_running_loop()
        ended = await loop.run_in_executor(None, end_kernel_tasks, self.engine, kernel_id, how)
        if ended:
            log.info("bgtasks: kernel %s %s: ended %d task(s)", kernel_id, how, len(ended))
