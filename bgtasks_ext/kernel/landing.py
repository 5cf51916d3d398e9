"""Where a finished task's outputs wait until they may land in the notebook: between cells.

A background cell that assigns ``i`` must not change the ``i`` of a loop that runs in the
foreground at that moment. So the events thread, which learns that a task finished,
never touches the user namespace: it *queues* the outputs here, and they are set

- before the next execution starts (IPython's ``pre_execute`` event, which precedes
  ``pre_run_cell`` and also covers silent executions),
- right after an execution ends (``post_execute``),
- while the kernel is idle, at once: the events thread wakes the kernel's own loop (the
  main thread's tornado ``io_loop``, whose ``add_callback`` is thread-safe), and the
  callback lands them only if no execution is under way (a cell that ``await``\\ s lets
  that loop turn mid-cell, which is why executions are counted, not assumed),
- or when the notebook's own code waits for that task in the main thread (``h.wait()``,
  ``h.result()``, ``await h``): a point the user chose, so ``h.wait(); print(y)`` works.

Outputs of a task superseded by a re-run of its cell never land, even when they were
already queued, or when the task ends after being superseded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

Landed = Callable[[list[str]], None]
"""Told the names just set (in the thread that set them: the main thread, between cells)."""


@dataclass
class _Pending:
    task_id: str
    values: dict[str, Any]
    on_landed: Landed | None


class Landing:
    """The queue of one shell, its IPython hooks and its idle wake-up."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._superseded: set[str] = set()
        self._depth = 0
        """Executions under way (nested ``run_cell`` counts twice), never below 0."""
        kernel = getattr(shell, "kernel", None)
        self._loop: Any = getattr(kernel, "io_loop", None)

    # -- IPython's events --------------------------------------------------------------
    def install(self) -> None:
        """Hook the shell's events. Usually called from inside a cell (``%load_ext``,
        ``attach()``): that execution is counted as under way, since its
        ``pre_execute`` already passed and its ``post_execute`` is still to come."""
        self._depth = 1 if _inside_execution(self.shell) else 0
        self.shell.events.register("pre_execute", self._pre_execute)
        self.shell.events.register("post_execute", self._post_execute)

    def uninstall(self) -> None:
        for event, hook in (("pre_execute", self._pre_execute), ("post_execute", self._post_execute)):
            try:
                self.shell.events.unregister(event, hook)
            except ValueError:
                pass  # never registered

    def _pre_execute(self) -> None:
        if not self.running:  # not a run_cell() nested in a running cell
            self.land()
        with self._lock:
            self._depth += 1

    def _post_execute(self) -> None:
        with self._lock:
            self._depth = max(0, self._depth - 1)
            idle = self._depth == 0
        if idle:
            self.land()

    @property
    def running(self) -> bool:
        """Whether an execution (a cell) is under way."""
        return self._depth > 0

    # -- the queue -----------------------------------------------------------------------
    def put(self, task_id: str, values: dict[str, Any], on_landed: Landed | None = None) -> None:
        """Queue ``values`` (any thread); they land at the next point between cells."""
        with self._lock:
            if task_id in self._superseded:
                return
            self._queue.append(_Pending(task_id, dict(values), on_landed))
        self._wake()

    def pending(self, task_id: str) -> bool:
        """Whether ``task_id`` has outputs queued that have not landed yet."""
        with self._lock:
            return any(p.task_id == task_id for p in self._queue)

    def supersede(self, task_id: str) -> None:
        """Drop ``task_id``'s queued outputs and refuse any it brings later."""
        with self._lock:
            self._superseded.add(task_id)
            self._queue = [p for p in self._queue if p.task_id != task_id]

    def superseded(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._superseded

    def land(self, task_id: str | None = None) -> list[str]:
        """Set the queued outputs (all, or only ``task_id``'s) in the user namespace, in
        the order the tasks finished; returns the names set. Call it only where no
        cell's code is running (or from the code that chose to wait for the task)."""
        with self._lock:
            ready = [p for p in self._queue if task_id is None or p.task_id == task_id]
            if not ready:
                return []
            self._queue = [p for p in self._queue if p not in ready]
        names: list[str] = []
        user_ns = self.shell.user_ns
        for item in ready:
            user_ns.update(item.values)
            names += item.values
            if item.on_landed is not None:
                try:
                    item.on_landed(sorted(item.values))
                except Exception:  # noqa: S110 - a view's note must not stop the others
                    pass
        return names

    def _wake(self) -> None:
        """Ask the kernel's loop to land the queue if it is idle (from any thread)."""
        loop = self._loop
        if loop is None:
            return  # no kernel loop (a terminal IPython): the next cell lands them
        try:
            loop.add_callback(self._land_if_idle)
        except RuntimeError:
            pass  # the loop is closing: the kernel is going away

    def _land_if_idle(self) -> None:
        if not self.running:
            self.land()


def _inside_execution(shell: Any) -> bool:
    """Whether the main thread is running an execute request right now: the kernel's
    current shell parent is one (at kernel start-up, before any request, it is empty)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        parent = kernel.get_parent("shell") or {}
    except Exception:
        return False
    return bool(parent.get("header", {}).get("msg_type") == "execute_request")


_landings: dict[int, Landing] = {}
_landings_lock = threading.Lock()


def landing_for(shell: Any = None) -> Landing | None:
    """The landing of ``shell`` (default: the running IPython), installed on first use;
    None outside IPython (a plain script has no namespace to land in)."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
        if shell is None:
            return None
    with _landings_lock:
        landing = _landings.get(id(shell))
        if landing is None or landing.shell is not shell:
            if landing is not None:
                landing.uninstall()  # a shell gone, its id reused
            landing = _landings[id(shell)] = Landing(shell)
            landing.install()
        return landing


def settle(task_id: str) -> None:
    """Land ``task_id``'s queued outputs now, if the caller is the main thread (the
    notebook's code waiting for that task: ``h.wait()``, ``h.result()``, ``await h``)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _landings_lock:
        landings = list(_landings.values())
    for landing in landings:
        landing.land(task_id)
