"""The process executor's loop: the one thread that owns every worker and queue.

It waits (``selectors``) on the workers' sockets, on their pidfds (readable when the
process exits), on the :class:`~.mailbox.Mailbox` that :meth:`ProcessExecutor.submit` and
friends post to, and on its own timers (cancel escalation, restart back-off), and
it makes every callback.

One shortcut: :meth:`Supervisor.try_start` lets the thread that submits a job (the
engine's writer, right after the job's task is committed) hand it to an idle worker
itself, so the common case costs no wake-up of this thread. The loop and the shortcut
share :attr:`Supervisor.lock`, taken by the loop for each turn's work (never while it
waits in ``select``), so the state below still has one owner at a time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import signal
import threading
import time
from typing import Any, Callable, Sequence

from ..core.models import TaskError
from ..core.ports import ExecutorCallbacks, Job, Outcome, OutcomeStatus
from ..core.warm import WORKER_MARK
from . import proctree, protocol
from .mailbox import Mailbox
from .pool import Pool, worker_env
from .worker_handle import WorkerHandle

log = logging.getLogger(__name__)

TRY_START_BYTES = 64 * 1024
"""Largest payload :meth:`Supervisor.try_start` sends from the submitting thread: a
bigger one may fill the socket buffer and block there, and that thread is the engine's
writer, whose every commit would wait."""
_POLL = 0.05
"""Seconds between exit checks where there is no pidfd (other systems, old kernels)."""


class Supervisor:
    """Runs in the executor's thread (:meth:`run`) until shut down."""

    def __init__(
        self,
        callbacks: ExecutorCallbacks,
        mailbox: Mailbox,
        workers: int,
        python: str,
        kill_grace: float | None,
        env: dict[str, str],
        path: Sequence[str] | None,
        max_tasks_per_worker: int = 0,
        memory_limit: int | None = None,
    ) -> None:
        self.callbacks = callbacks
        self.max_tasks_per_worker = max_tasks_per_worker
        self.memory_limit = memory_limit
        self.mailbox = mailbox
        self.workers = workers
        self.python = python
        self.kill_grace = kill_grace
        self._env = env
        self._path = path
        self._sel = selectors.DefaultSelector()
        self.pools: dict[str, Pool] = {}
        self._queued: set[str] = set()
        self._running: dict[str, WorkerHandle] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._closing = False
        self.lock = threading.Lock()
        """Held for every change of the state below: by the loop for each turn's work,
        by :meth:`try_start` from the submitting thread."""
        self._refill = True
        """Set when the pools may need workers started: checked once per loop turn,
        not on every message, to keep the hot path short."""

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        self._sel.register(self.mailbox.read_fd, selectors.EVENT_READ, self._on_wake)
        self._pool(self.python)
        try:
            while True:
                with self.lock:
                    if self._closing and not self._live_workers():
                        break
                    self._fill()
                    timeout = None
                    if self._timers:
                        timeout = max(0.0, self._timers[0][0] - time.monotonic())
                events = self._sel.select(timeout)  # registrations happen on this thread only
                with self.lock:
                    for key, _ in events:
                        key.data()
                    self._fire_timers()
                    self._dispatch()
        except BaseException:
            log.exception("process executor loop crashed; killing its workers")
            for w in self._live_workers():
                w.kill(signal.SIGKILL)
            raise
        finally:
            for w in self._live_workers():
                w.kill(signal.SIGKILL)
                w.reap()
                self._end_kept(w)
            self._sel.close()

    def _on_wake(self) -> None:
        for cmd in self.mailbox.take():
            getattr(self, "_do_" + cmd[0])(*cmd[1:])

    def _do_submit(self, job: Job) -> None:
        if self._closing or job.task_id in self._queued or job.task_id in self._running:
            return
        pool = self._pool(job.python or self.python)
        pool.queue.append(job)
        self._queued.add(job.task_id)
        if not pool.warm:
            self._refill = True

    def _do_cancel(self, task_id: str, grace: float, kill_grace: float | None = None) -> None:
        if task_id in self._queued:
            self._queued.discard(task_id)  # never claimed: dropped without a done call
            return
        w = self._running.get(task_id)
        if w is None or w.cancelling:
            return
        w.cancelling = True
        w.send(protocol.cancel_msg(task_id))
        job = w.job
        if kill_grace is None:
            kill_grace = grace if self.kill_grace is None else self.kill_grace
        second = kill_grace

        def terminate() -> None:
            if w.job is job and not w.gone:
                w.signalled = signal.SIGTERM
                w.kill(signal.SIGTERM)
                self._after(second, kill)

        def kill() -> None:
            if w.job is job and not w.gone:
                w.signalled = signal.SIGKILL
                self._kill_with_tree(w)

        self._after(grace, terminate)

    def _do_shutdown(self, grace: float) -> None:
        self._closing = True
        self._queued.clear()
        for pool in self.pools.values():
            pool.queue.clear()
        # Half the grace to stop cooperatively or by SIGTERM, the rest before SIGKILL.
        for task_id in list(self._running):
            self._do_cancel(task_id, grace / 2, grace / 2)
        for w in self._live_workers():
            if w.job is None:
                self._retire(w)
        self._after(grace, self._kill_all)

    def _kill_all(self) -> None:
        for w in self._live_workers():
            self._kill_with_tree(w)

    def _kill_with_tree(self, w: WorkerHandle) -> None:
        """SIGKILL a worker and every process under it (what its task started)."""
        proctree.end(lambda: proctree.descendants(w.pid))
        w.kill(signal.SIGKILL)

    def _retire(self, w: WorkerHandle) -> None:
        w.retiring = True
        if not w.send(protocol.SHUTDOWN):
            w.kill(signal.SIGKILL)

    # -- dispatch ---------------------------------------------------------------------
    def try_start(self, job: Job) -> bool:
        """From the submitting thread: start ``job`` at once when a worker of its
        interpreter is idle and no job waits before it. ``False`` leaves it to the loop
        (post it to the mailbox). The caller must hold no lock the callbacks take."""
        if job.payload is not None and len(job.payload) > TRY_START_BYTES:
            return False  # sending it may block: not on the submitter's (the writer's) thread
        with self.lock:
            if self._closing or job.task_id in self._queued or job.task_id in self._running:
                return True  # dropped, as the loop would drop it
            pool = self.pools.get(job.python or self.python)
            if pool is None or pool.queue or not pool.idle:
                return False
            self._start(pool, job)
            return True

    def _dispatch(self) -> None:
        for pool in self.pools.values():
            while pool.queue and pool.idle:
                job = pool.queue.popleft()
                if job.task_id not in self._queued:
                    continue  # cancelled while queued
                self._queued.discard(job.task_id)
                self._start(pool, job)

    def _start(self, pool: Pool, job: Job) -> None:
        """Claim ``job`` and send it to an idle worker of ``pool`` (there is one)."""
        msg = protocol.run_msg(
            job.task_id, job.ref, dict(job.params), job.attempt, job.cwd, job.payload is not None,
            job.max_result_bytes, self.memory_limit, job.settings,
        )
        try:
            chunks = protocol.encode(msg, job.payload)
        except (TypeError, ValueError) as exc:
            if self._call(self.callbacks.claim, job.task_id):
                err = TaskError(type(exc).__name__, f"parameters are not JSON: {exc}", reason="input")
                self._call(self.callbacks.done, job.task_id, Outcome(OutcomeStatus.FAILED, error=err))
            return
        if not self._call(self.callbacks.claim, job.task_id):
            return
        w = pool.idle.popleft()
        w.job = job
        self._running[job.task_id] = w
        # A failed send means the worker died: its exit reports the job.
        w.send_chunks(chunks)
        if job.warm is not None and job.warm not in pool.warms:
            self._warm_pool(pool, job.warm, job.settings)

    # -- warm-up --------------------------------------------------------------------
    def _warm_pool(self, pool: Pool, ref: str, settings: Any) -> None:
        """The first job of a kind with a ``warm`` function reached ``pool``: each of its
        workers calls it from now on (those starting later once they are ready). Sent
        after the job, so that its worker starts the job first."""
        pool.warms[ref] = dict(settings)
        for w in pool.workers:
            if w.ready and not w.retiring:
                self._send_warms(w, pool)

    def _send_warms(self, w: WorkerHandle, pool: Pool) -> None:
        for ref, settings in pool.warms.items():
            if ref not in w.warmed:
                w.warmed.add(ref)
                try:
                    w.send(protocol.warm_msg(ref, settings))
                except (TypeError, ValueError) as exc:
                    log.error("cannot send warm-up %s to worker %d: its settings are not JSON: %s",
                              ref, w.pid, exc)

    def _end_kept(self, w: WorkerHandle) -> None:
        """``w`` is gone: end what it kept (core/warm.py), found by the worker's mark in
        their environment (re-parented, they are no longer its descendants). Only for
        workers told to warm: nothing else keeps processes."""
        if w.warmed:
            proctree.end(lambda: proctree.marked(w.mark, WORKER_MARK))

    def _fill(self) -> None:
        if self._closing or not self._refill:
            return
        self._refill = False
        now = time.monotonic()
        for pool in list(self.pools.values()):
            for _ in range(pool.to_spawn(now)):
                try:
                    w = pool.spawn()
                except OSError as exc:
                    self._start_failed(pool, f"cannot run {pool.python}: {exc}", fatal=True)
                    break
                self._sel.register(w.sock, selectors.EVENT_READ, lambda w=w: self._on_readable(w))
                if w.pidfd is not None:
                    self._sel.register(w.pidfd, selectors.EVENT_READ, lambda w=w: self._on_exit(w))
                else:
                    self._poll_exit(w)

    def _pool(self, python: str) -> Pool:
        pool = self.pools.get(python)
        if pool is None:
            env = worker_env(python, self._env, self._path)
            pool = self.pools[python] = Pool(python, self.workers, python == self.python, env)
        return pool

    # -- worker events ------------------------------------------------------------------
    def _on_readable(self, w: WorkerHandle) -> None:
        try:
            frames = w.receive()
        except protocol.ProtocolError as exc:
            log.error("worker %d sent garbage (%s); killing it", w.pid, exc)
            w.kill(signal.SIGKILL)
            frames = None
        if frames is None:
            self._sel.unregister(w.sock)
            if w.pidfd is None:
                self._poll_exit(w, soon=True)
            # A worker that closed its socket but lives on can never report: end it.
            self._after(1.0, lambda: w.kill(signal.SIGKILL))
            return
        for msg, data in frames:
            try:
                self._handle(w, msg, data)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("worker %d sent a malformed %r message (%r); killing it", w.pid, msg.get("op"), exc)
                w.kill(signal.SIGKILL)
                return

    def _handle(self, w: WorkerHandle, msg: protocol.Message, data: bytes | None) -> None:
        op = msg["op"]
        job = w.job
        if op == "ready":
            if msg.get("version") != protocol.VERSION:
                w.start_error = (
                    f"the worker under {w.python} speaks protocol {msg.get('version')!r}, the server "
                    f"{protocol.VERSION}: install the server's version of jupyter-bgtasks there"
                )
                w.kill(signal.SIGKILL)
                return
            pool = self.pools[w.python]
            pool.became_ready(w)
            if self._closing:
                self._retire(w)
            elif pool.warms:
                self._send_warms(w, pool)
            return
        if job is None or msg.get("task_id") != job.task_id:
            return  # a late message of a job already reported
        if op == "progress":
            self._call(self.callbacks.progress, job.task_id, msg["current"], msg.get("total"), msg.get("message"))
        elif op == "log":
            self._call(self.callbacks.log, job.task_id, msg["text"])
        elif op == "done":
            outcome = Outcome(
                status=OutcomeStatus(msg["status"]), result=data, preview=msg.get("preview"),
                error=TaskError.from_json(msg.get("error")),
            )
            self._finish(w, outcome)
            if w.signalled == signal.SIGKILL:
                return  # it ended just as it was killed; its exit only replaces it
            w.signalled = None
            w.tasks_done += 1
            worn = 0 < self.max_tasks_per_worker <= w.tasks_done
            if self._closing or worn or msg.get("retire"):
                self._retire(w)  # its exit starts a fresh one
            else:
                self.pools[w.python].idle.append(w)

    def _finish(self, w: WorkerHandle, outcome: Outcome) -> None:
        assert w.job is not None
        task_id = w.job.task_id
        w.job = None
        w.cancelling = False
        self._running.pop(task_id, None)
        self._call(self.callbacks.done, task_id, outcome)

    def _on_exit(self, w: WorkerHandle) -> None:
        for msg, data in w.drain():
            self._handle(w, msg, data)
        try:
            self._sel.unregister(w.sock)
        except (KeyError, ValueError):
            pass
        if w.pidfd is not None:
            self._sel.unregister(w.pidfd)
        was_ready = w.ready
        w.reap()
        self._end_kept(w)
        pool = self.pools[w.python]
        pool.remove(w)
        self._refill = True
        how = w.describe_exit()
        if w.job is not None:
            # It died with a task: what the task started lives on, re-parented away
            # from it; found by the mark of the run in its environment.
            mark = f"{w.job.task_id}.{w.job.attempt}"
            proctree.end(lambda: proctree.marked(mark))
            if w.cancelling:
                outcome = Outcome(OutcomeStatus.CANCELLED)
            else:
                outcome = Outcome(OutcomeStatus.FAILED, error=TaskError("WorkerDied", how, reason="worker_died"))
            self._finish(w, outcome)
        if not was_ready and not w.retiring and not self._closing:
            error = w.start_error or f"a worker for {pool.python} died while starting: {how}"
            self._start_failed(pool, error, fatal=w.start_error is not None)

    def _poll_exit(self, w: WorkerHandle, soon: bool = False) -> None:
        """Without a pidfd, look for the exit now and then (soon after an EOF)."""

        def check() -> None:
            if w.gone:
                return
            if w.exited():
                self._on_exit(w)
            else:
                self._poll_exit(w, soon=w.eof)

        self._after(0.005 if soon else _POLL, check)

    def _start_failed(self, pool: Pool, error: str, fatal: bool = False) -> None:
        log.warning("%s", error)
        give_up = pool.start_failed(error) or fatal
        self._after(max(0.0, pool.retry_at - time.monotonic()), self._wants_refill)
        if not give_up:
            return
        while pool.queue:
            job = pool.queue.popleft()
            if job.task_id in self._queued:
                self._queued.discard(job.task_id)
                if self._call(self.callbacks.claim, job.task_id):
                    err = TaskError("WorkerStartFailed", error, reason="worker_died")
                    self._call(self.callbacks.done, job.task_id, Outcome(OutcomeStatus.FAILED, error=err))

    def _wants_refill(self) -> None:
        self._refill = True

    # -- helpers ----------------------------------------------------------------------
    def _live_workers(self) -> list[WorkerHandle]:
        return [w for p in self.pools.values() for w in p.workers]

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            heapq.heappop(self._timers)[2]()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # A failing callback must not take the loop (and with it every worker) down.
        try:
            return fn(*args)
        except Exception:
            log.exception("executor callback %s failed", getattr(fn, "__name__", fn))
            return False
