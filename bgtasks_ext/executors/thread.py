"""The ``thread`` executor: runs kinds on a pool of threads in the server process.

For light, I/O-bound kinds. Cancel is honest about threads: first the cooperative
flag (``progress()``/``track()`` raise, ``cancelled()`` turns true), after the grace
period an asynchronous ``TaskCancelled`` raised in the thread (lands at the next
Python bytecode, not inside a blocking C call), and after a second grace the thread
is abandoned: the task is reported cancelled, its thread's slot is replaced, and
whatever it still does is ignored.
"""

from __future__ import annotations

import queue
import threading

from ..core import output
from ..core.attempt import run_attempt, run_kind
from ..core.context import TaskContext
from ..core.interrupt import CodeWindow
from ..core.ports import Executor, ExecutorCallbacks, Job, Outcome, OutcomeStatus


class _CallbackSink:
    __slots__ = ("task_id", "callbacks")

    def __init__(self, task_id: str, callbacks: ExecutorCallbacks) -> None:
        self.task_id = task_id
        self.callbacks = callbacks

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        self.callbacks.progress(self.task_id, current, total, message)

    def log(self, text: str) -> None:
        self.callbacks.log(self.task_id, text)


class _Running:
    __slots__ = ("ctx", "thread", "abandoned", "timers", "window")

    def __init__(self, ctx: TaskContext, thread: threading.Thread) -> None:
        self.ctx = ctx
        self.thread = thread
        self.abandoned = False
        self.window = CodeWindow()
        self.timers: list[threading.Timer] = []


class ThreadExecutor(Executor):
    name = "thread"
    in_server_process = True

    def __init__(self, workers: int = 8) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        # A C-implemented queue: the hand-off to a thread is on the no-op hot path.
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._callbacks: ExecutorCallbacks | None = None

    def start(self, callbacks: ExecutorCallbacks) -> None:
        self._callbacks = callbacks
        output.install()
        for _ in range(self.workers):
            self._spawn_thread()

    def submit(self, job: Job) -> None:
        if not self._closed:
            self._queue.put(job)

    def cancel(self, task_id: str, grace: float) -> None:
        # A queued job needs nothing: the engine already ended it, so its claim fails.
        with self._lock:
            running = self._running.get(task_id)
            if running is None or running.timers:
                return
            running.ctx.request_cancel()
            for delay, step in ((grace, self._interrupt), (2 * grace, self._abandon)):
                timer = threading.Timer(delay, step, (task_id, running))
                timer.daemon = True
                running.timers.append(timer)
                timer.start()

    def shutdown(self, grace: float) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
            threads = list(self._threads)
        for task_id in running:
            self.cancel(task_id, grace / 2)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(grace + 0.5)

    # -- internals ---------------------------------------------------------------
    def _spawn_thread(self) -> None:
        thread = threading.Thread(target=self._loop, name="bgtasks-thread", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _loop(self) -> None:
        me = threading.current_thread()
        claim = self._callbacks.claim  # type: ignore[union-attr]
        while True:
            job = self._queue.get()
            if job is None or self._closed:
                with self._lock:
                    self._threads.discard(me)
                return
            # Known as running before the claim: from the moment the engine says it
            # runs, a cancel must find it, also in the gap before its code starts.
            running = self._register(job, me)
            if not claim(job.task_id):
                with self._lock:
                    self._running.pop(job.task_id, None)
                    for timer in running.timers:
                        timer.cancel()
                continue
            if not self._run(job, running):
                return  # abandoned: another thread took this one's place

    def _register(self, job: Job, me: threading.Thread) -> _Running:
        assert self._callbacks is not None
        ctx = TaskContext(
            job.task_id, _CallbackSink(job.task_id, self._callbacks), job.params, job.attempt,
            payload=job.payload, settings=job.settings,
        )
        running = _Running(ctx, me)
        with self._lock:
            self._running[job.task_id] = running
        return running

    def _run(self, job: Job, running: _Running) -> bool:
        assert self._callbacks is not None
        ctx = running.ctx
        outcome = run_attempt(ctx, run_kind, job.ref, ctx, window=running.window,
                              max_result_bytes=job.max_result_bytes)
        with self._lock:
            for timer in running.timers:
                timer.cancel()
            self._running.pop(job.task_id, None)
            if running.abandoned:
                return False
        self._callbacks.done(job.task_id, outcome)
        return True

    def _interrupt(self, task_id: str, running: _Running) -> None:
        # Only while the task's own code runs in its thread: a thread that moved on
        # (or a new thread reusing the ident) is never hit.
        running.window.interrupt()

    def _abandon(self, task_id: str, running: _Running) -> None:
        with self._lock:
            if self._running.get(task_id) is not running:
                return
            running.abandoned = True
            del self._running[task_id]
            self._threads.discard(running.thread)
            if not self._closed:
                self._spawn_thread()
        assert self._callbacks is not None
        self._callbacks.done(task_id, Outcome(OutcomeStatus.CANCELLED))
