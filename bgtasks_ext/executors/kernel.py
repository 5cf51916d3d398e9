"""The ``kernel`` executor: tasks that run in a thread of the kernel that launched them.

The server cannot reach into a kernel, so this executor runs nothing itself. The
kernel creates the task (``executor: "kernel"``, its own id in ``origin.kernel_id``)
and then drives it over REST, and those routes land here: ``claim`` (pending ->
running; refused once the task was cancelled meanwhile), ``progress``, ``log`` and
``done``. Each one is an :class:`ExecutorCallbacks` call, exactly what a thread or
process worker would make.

Cancel is cooperative and travels the other way: the engine marks the task
``cancelling``, the kernel sees that on the events websocket, sets the task's flag,
then raises an asynchronous exception in its thread, and reports ``done``. The
engine's safety timer ends the task ``cancelled`` if the kernel never answers. A
kernel that goes away takes its tasks with it: the server's kernel watcher
(:mod:`bgtasks_ext.server.kernels`) fails them as ``interrupted``.
"""

from __future__ import annotations

import threading

from ..core.errors import Conflict
from ..core.ports import Executor, ExecutorCallbacks, Job, Outcome


class KernelExecutor(Executor):
    name = "kernel"
    in_kernel = True

    def __init__(self) -> None:
        self._callbacks: ExecutorCallbacks | None = None
        self._lock = threading.Lock()
        self._waiting: dict[str, Job] = {}
        """Jobs handed over by the engine that their kernel has not claimed yet."""
        self._running: set[str] = set()
        self._closed = False

    def start(self, callbacks: ExecutorCallbacks) -> None:
        self._callbacks = callbacks

    def submit(self, job: Job) -> None:
        # Nothing to start: the task waits for its kernel to claim it. (The kernel may
        # claim before this runs: the engine acknowledges a create before it dispatches.)
        with self._lock:
            if not self._closed and job.task_id not in self._running:
                self._waiting[job.task_id] = job

    def cancel(self, task_id: str, grace: float) -> None:
        # A pending task is already cancelled by the engine (its claim will fail); a
        # running one is ``cancelling``, which its kernel learns from the events.
        with self._lock:
            self._waiting.pop(task_id, None)

    def shutdown(self, grace: float) -> None:
        # Kernels outlive nothing here: the engine records its running tasks as
        # interrupted once the executors are shut down, and pending ones stay pending.
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._running.clear()

    # -- what the kernel reports, through REST ------------------------------------
    def claim(self, task_id: str) -> None:
        """The kernel starts the task: pending -> running, else :class:`Conflict`."""
        if self._closed or not self._cb.claim(task_id):
            raise Conflict(f"task {task_id} is not pending: it cannot be claimed")
        with self._lock:
            self._waiting.pop(task_id, None)
            self._running.add(task_id)

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        self._check_claimed(task_id)
        self._cb.progress(task_id, current, total, message)

    def log(self, task_id: str, text: str) -> None:
        self._check_claimed(task_id)
        self._cb.log(task_id, text)

    def _check_claimed(self, task_id: str) -> None:
        """Reports only for a task its kernel claimed (and has not reported done): a
        report for any other is a mistake to answer (409), not to drop unseen."""
        with self._lock:
            claimed = task_id in self._running
        if not claimed:
            raise Conflict(f"task {task_id} is not running in a kernel: claim it before reporting")

    def done(self, task_id: str, outcome: Outcome) -> None:
        """The kernel's run ended (a report for a task that already ended changes nothing)."""
        with self._lock:
            self._running.discard(task_id)
        self._cb.done(task_id, outcome)

    def waiting(self) -> list[str]:
        """Ids of the tasks handed over and not claimed yet (for diagnostics)."""
        with self._lock:
            return sorted(self._waiting)

    @property
    def _cb(self) -> ExecutorCallbacks:
        if self._callbacks is None:
            raise RuntimeError("the kernel executor is not started")
        return self._callbacks
