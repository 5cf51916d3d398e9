"""The ``process`` executor: a warm pool of spawned worker processes.

Real parallelism, and cancel can always stop a task: first the cooperative flag
(``progress()``/``track()`` raise, ``cancelled()`` turns true), after ``grace`` a
SIGTERM (the worker turns it into :class:`TaskCancelled`, which stops pure-Python
loops and blocking calls, and the worker lives on), after a second grace a SIGKILL
(the worker is replaced). A worker that dies by itself mid-task (a segfault,
``os._exit``, the OOM killer) fails its task with reason ``worker_died``; the others
do not notice.

One thread, the :class:`~.supervisor.Supervisor`, owns every worker and queue;
the methods here only post to its mailbox.

Workers die with the server: a worker exits when its socket reaches EOF, and on
Linux it also asks for SIGKILL on its parent's death (``PR_SET_PDEATHSIG``; which is
why workers are only spawned by the long-lived loop thread).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Mapping, Sequence

from ..core.ports import Executor, ExecutorCallbacks, Job
from .mailbox import Mailbox
from .supervisor import Supervisor

log = logging.getLogger(__name__)


class ProcessExecutor(Executor):
    """Runs jobs in spawned worker processes.

    ``workers`` is the size of each interpreter's pool: the server's interpreter
    (``python``) keeps that many warm; each other interpreter named by a job
    (``Job.python``) gets its own pool of up to that many, started on demand and
    kept. ``kill_grace`` is the wait between SIGTERM and SIGKILL (default: the
    cancel's own grace). ``env`` is added to the workers' environment; ``path`` is
    prepended to their ``PYTHONPATH`` (default: the server's ``sys.path`` for workers
    of the server's own interpreter, so they import what the server can; nothing for
    other interpreters, whose ``site-packages`` may not match ours).
    ``max_tasks_per_worker`` (0: no limit) replaces a worker after that many tasks;
    ``task_memory_limit`` (bytes, ``None``: none) is how much a task may grow its
    worker's address space (beyond it: failed, reason ``memory``).
    """

    name = "process"

    def __init__(
        self,
        workers: int | None = None,
        python: str | None = None,
        *,
        kill_grace: float | None = None,
        env: Mapping[str, str] | None = None,
        path: Sequence[str] | None = None,
        max_tasks_per_worker: int = 0,
        task_memory_limit: int | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        self.python = python or sys.executable
        self.kill_grace = kill_grace
        self._env = dict(env or {})
        self._path = list(path) if path is not None else None
        self.max_tasks_per_worker = max_tasks_per_worker
        self.task_memory_limit = task_memory_limit or None
        self._mailbox = Mailbox()
        self._supervisor: Supervisor | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self, callbacks: ExecutorCallbacks) -> None:
        self._supervisor = Supervisor(
            callbacks, self._mailbox, self.workers, self.python, self.kill_grace, self._env, self._path,
            self.max_tasks_per_worker, self.task_memory_limit,
        )
        self._thread = threading.Thread(target=self._supervisor.run, name="bgtasks-process", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        # An idle worker takes it from this thread; otherwise the loop queues it.
        sup = self._supervisor
        if not self._closed and (sup is None or not sup.try_start(job)):
            self._mailbox.post("submit", job)

    def cancel(self, task_id: str, grace: float) -> None:
        if not self._closed:
            self._mailbox.post("cancel", task_id, grace)

    def shutdown(self, grace: float) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._mailbox.post("shutdown", grace)
            # The loop ends by itself at most ``grace`` after this (then SIGKILLs);
            # the margin is for reaping and a slow callback.
            self._thread.join(grace + 30)
            if self._thread.is_alive():
                log.error("the process executor's loop did not stop; leaving it")
                return
        self._mailbox.close()

    def pids(self, ready: bool = False) -> list[int]:
        """PIDs of the live workers, or of those ready for jobs (a snapshot, for
        tests and diagnostics)."""
        sup = self._supervisor
        if sup is None:
            return []
        return [w.pid for p in list(sup.pools.values()) for w in list(p.workers) if w.ready or not ready]
