"""The ``kernel`` executor, kernel side: a task run by a thread inside the user's kernel.

For code that needs live kernel objects (open connections, models on a GPU, anything
that will not pickle). The server only records the task; this thread claims it, runs
:func:`bgtasks_ext.kinds.code.run_code` on the user's own namespace, reports progress
and log over REST, and posts the outcome. Cancel is honest about threads: the server
marks the task ``cancelling``, this thread sees it on the events stream and sets the
cooperative flag (``progress()``/``track()`` raise, ``cancelled()`` turns true); after
``grace`` seconds an asynchronous ``TaskCancelled`` is raised in the thread, which lands
at the next bytecode (not inside a blocking C call). If the kernel dies, the server
marks the task failed (interrupted).
"""

from __future__ import annotations

import threading
from typing import Any

from ..core.attempt import run_attempt
from ..core.context import TaskContext
from ..core.interrupt import CodeWindow
from ..kinds.code import CodeJob, run_code
from .client import Client, TaskConflict, TaskDict

GRACE = 2.0
"""Seconds between the cooperative cancel flag and the asynchronous exception."""
LOG_FLUSH = 0.2
"""Seconds a task's output may wait before it is posted (one POST per burst, not per print)."""


class _RestSink:
    """Sends a context's coalesced progress, and its log in bursts, to the server."""

    def __init__(self, client: Client, task_id: str) -> None:
        self.client = client
        self.task_id = task_id
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        try:
            self.client.progress(self.task_id, current, total, message)
        except Exception:  # noqa: S110 - progress is best effort; the outcome is not
            pass

    def log(self, text: str) -> None:
        with self._lock:
            self._buffer.append(text)
            if self._timer is None:
                self._timer = threading.Timer(LOG_FLUSH, self.flush_log)
                self._timer.daemon = True
                self._timer.start()

    def flush_log(self) -> None:
        with self._lock:
            text, self._buffer = "".join(self._buffer), []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if text:
            try:
                self.client.log_text(self.task_id, text)
            except Exception:  # noqa: S110 - best effort, like progress
                pass


class KernelRun:
    """One kernel-executor task: its thread, context and cancel handling."""

    def __init__(self, client: Client, task_id: str, job: CodeJob,
                 namespace: dict[str, Any] | None, grace: float = GRACE) -> None:
        self.client = client
        self.task_id = task_id
        self.job = job
        self.namespace = namespace
        self.grace = grace
        self.sink = _RestSink(client, task_id)
        self.ctx = TaskContext(task_id, self.sink)
        self.window = CodeWindow()
        self.thread = threading.Thread(target=self._main, name=f"bgtasks-kernel-{task_id[:8]}",
                                       daemon=True)
        self._cancel_timer: threading.Timer | None = None
        self._running = False
        self._lock = threading.Lock()

    def start(self) -> KernelRun:
        self.thread.start()
        return self

    def _on_event(self, task: TaskDict) -> None:
        if task.get("state") != "cancelling":
            return
        with self._lock:
            if self._cancel_timer is not None or not self._running:
                return
            self.ctx.request_cancel()
            self._cancel_timer = threading.Timer(self.grace, self.window.interrupt)
            self._cancel_timer.daemon = True
            self._cancel_timer.start()

    def _main(self) -> None:
        try:
            self.client.claim(self.task_id)
        except TaskConflict:
            return  # cancelled (or taken) before it started: nothing to run
        except Exception:  # noqa: S110 - the server's safety timer ends the task
            return
        with self._lock:
            self._running = True  # from here a cancel must reach this thread
        unwatch: Any = None
        try:
            unwatch = self.client.watch(self.task_id, self._on_event)
            outcome = run_attempt(self.ctx, run_code, self.job, self.namespace, window=self.window)
        finally:
            with self._lock:
                self._running = False
                if self._cancel_timer is not None:
                    self._cancel_timer.cancel()
            if unwatch is not None:
                unwatch()
        self.sink.flush_log()
        try:
            self.client.done(
                self.task_id, outcome.status.value, outcome.preview,
                outcome.error.to_json() if outcome.error is not None else None, outcome.result,
            )
        except Exception:  # noqa: S110 - the server fails the task if it never hears back
            pass


def run_in_kernel(client: Client, task_id: str, job: CodeJob,
                  namespace: dict[str, Any] | None = None, grace: float = GRACE) -> KernelRun:
    """Start a thread that claims ``task_id`` and runs ``job`` in ``namespace`` (the
    user's live namespace for cells; ``None`` for a fresh one)."""
    return KernelRun(client, task_id, job, namespace, grace).start()
