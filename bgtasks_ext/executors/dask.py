"""The ``dask`` executor: tasks on a Dask ``distributed`` cluster.

Each attempt is one Dask task (:func:`.dask_worker.run_job`, by reference) keyed
``bgtasks-<task id>-<attempt>``; on the Dask worker it runs the job in a child process
from a warm pool (see :mod:`.dask_worker`), so cancel and timeout can end it and its
process tree, and the payload is loaded only in that child. What the child reports comes
back as events on this executor's topic (``Client.subscribe_topic``), handled on the Dask
client's event loop: ``started`` claims the task (it was ``pending`` while Dask queued it;
a job that ends within the first relay interval is not announced: its reply claims it and
carries its log and last progress), ``progress`` and ``log`` go to the engine as they
come. The outcome is the Dask task's return value: JSON and the result's opaque bytes,
never unpickled here.

Faults, with the engine's store the source of truth:

- the scheduler cannot be reached (at start, or the connection is lost): a clear error
  naming ``c.BgTasks.dask_scheduler`` in the server log, :meth:`DaskExecutor.unavailable`
  says why (the engine refuses new ``dask`` tasks with it; the other executors go on),
  and the connection is tried again with back-off; attempts under way when it was lost
  fail with reason ``interrupted`` (re-queued while they have retries); jobs handed over
  meanwhile (retries, pending tasks re-queued by a start) wait, pending, until it is back;
- a Dask worker dies under a task (the scheduler's ``remove-worker`` event, Dask's
  ``KilledWorker``, or the task starting again elsewhere): the attempt fails with reason
  ``worker_died`` (retried by the engine while it has retries) and Dask's own re-run is
  cancelled;
- cancel: a Dask task not started yet is cancelled (and dropped, never claimed); a
  running one is cancelled too, which its worker sees at once and turns into the process
  executor's cooperative flag, then SIGTERM, then SIGKILL of the child's tree, each after
  ``cancel_grace``; its ``done`` event reports the end.

``scheduler = "local"`` starts a ``LocalCluster`` (worker processes on this machine) with
the executor and closes it with it.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..core.models import TaskError
from ..core.ports import Executor, ExecutorCallbacks, Job, Outcome, OutcomeStatus
from .dask_worker import outcome_of, run_job

log = logging.getLogger(__name__)

SETTING = "c.BgTasks.dask_scheduler"
LOCAL = "local"
MAX_BACKOFF = 30.0
"""Longest wait between two connection attempts."""
SUBMIT_HERE_BYTES = 64 * 1024
"""Largest payload sent from the submitting thread (the engine's writer); bigger ones go
from the executor's own submitting thread."""
SCATTER_BYTES = 1024 * 1024
"""Payloads above this are scattered to a worker first (Dask's advice for big arguments)."""
WORKER_DIED = "worker_died"
INTERRUPTED = "interrupted"


@dataclass(eq=False)
class _Run:
    """One attempt submitted to Dask."""

    job: Job
    key: str
    future: Any = None
    claimed: bool = False
    cancelling: bool = False
    worker: str | None = None
    settled: bool = False
    """Reported to the engine, or dropped: nothing more is said of it."""


class DaskExecutor(Executor):
    """Runs jobs on the Dask cluster at ``scheduler`` (``tcp://host:8786``, or
    ``"local"`` for a ``LocalCluster`` of ``local_workers`` processes started here).
    ``cancel_grace``: seconds a cancelled task gets at each step (cooperative, SIGTERM)
    before the next. Each attempt's Dask worker address is its task's ``placement``.
    ``max_tasks_per_worker`` and ``task_memory_limit`` are the process executor's, applied
    to the pool of bgtasks workers in each Dask worker (the first job there sets them)."""

    name = "dask"

    def __init__(self, scheduler: str, *, cancel_grace: float = 5.0, local_workers: int = 2,
                 connect_timeout: float = 10.0, max_backoff: float = MAX_BACKOFF,
                 max_tasks_per_worker: int = 0, task_memory_limit: int | None = None) -> None:
        if not scheduler:
            raise ValueError(f"{SETTING} is empty: the dask executor needs a scheduler address or 'local'")
        self.scheduler = scheduler
        self.cancel_grace = cancel_grace
        self.max_tasks_per_worker = max_tasks_per_worker
        self.task_memory_limit = task_memory_limit or None
        self.local_workers = local_workers
        self.connect_timeout = connect_timeout
        self.max_backoff = max_backoff
        self.topic = f"bgtasks-{secrets.token_hex(8)}"
        """The events of this server's tasks: several servers may share one cluster."""
        self.dashboard: str | None = None
        self.address: str | None = None
        """The scheduler's address once connected (the LocalCluster's, for ``local``)."""
        self.cluster: Any = None
        self._callbacks: ExecutorCallbacks | None = None
        self._client: Any = None
        self._error: str | None = f"the dask executor is connecting to its scheduler ({SETTING} = {scheduler!r})"
        self._lock = threading.Lock()
        self._jobs: dict[str, _Run] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None
        self._ready: list[_Run] = []
        """Finished Dask tasks whose replies the next fetch gets (client loop only)."""
        self._waiting: dict[str, _Run] = {}
        """Jobs submitted while not connected: sent once connected."""
        self.connects = 0
        """Successful connections so far (a reconnect adds one)."""

    # -- health -------------------------------------------------------------------------
    def unavailable(self) -> str | None:
        """Why new tasks cannot run here now (``None``: they can)."""
        return None if self._client is not None else self._error

    def status(self) -> dict[str, Any]:
        """The executor's health, for ``GET bgtasks/api/status``."""
        client = self._client
        workers: int | None = None
        if client is not None:
            try:
                workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            except Exception:  # noqa: BLE001 - health must answer while the link is down
                workers = None
        return {
            "scheduler": self.scheduler, "address": self.address, "connected": client is not None,
            "error": self.unavailable(), "workers": workers, "dashboard": self.dashboard,
            "running": len(self._jobs), "connects": self.connects,
        }

    # -- Executor -----------------------------------------------------------------------
    def start(self, callbacks: ExecutorCallbacks) -> None:
        self._callbacks = callbacks
        self._thread = threading.Thread(target=self._connection_loop, name="bgtasks-dask", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                return
            client = self._client
            run = _Run(job, f"bgtasks-{job.task_id}-{job.attempt}")
            if client is None:
                # Not connected (yet: a start re-queues pending tasks before the first
                # connection; or again): it stays pending until the cluster is back.
                self._waiting[job.task_id] = run
                return
            self._jobs[job.task_id] = run
        self._send(client, run)

    def _send(self, client: Any, run: _Run) -> None:
        job = run.job
        if job.payload is not None and len(job.payload) > SUBMIT_HERE_BYTES:
            # Not on the caller's thread (the engine's writer): pickling or scattering a
            # big payload would hold up every commit meanwhile.
            self._submitter().submit(self._submit, client, run)
        else:
            self._submit(client, run)

    def _submit(self, client: Any, run: _Run) -> None:
        job = run.job
        spec = {
            "task_id": job.task_id, "kind": job.kind, "ref": job.ref, "params": dict(job.params),
            "cwd": job.cwd, "attempt": job.attempt, "max_result_bytes": job.max_result_bytes,
            "settings": dict(job.settings), "warm": job.warm,
            "max_tasks_per_worker": self.max_tasks_per_worker, "task_memory_limit": self.task_memory_limit,
        }
        try:
            if run.settled:
                return  # cancelled before it was sent
            payload: Any = job.payload
            if payload is not None and len(payload) > SCATTER_BYTES:
                # Straight to a worker, not through the scheduler inside the task; the
                # task follows its data there.
                payload = client.scatter(payload, hash=False)
            run.future = client.submit(run_job, self.topic, spec, payload, self.cancel_grace,
                                       key=run.key, pure=False)
        except Exception as exc:  # noqa: BLE001 - a closing client, unserialisable params
            self._end(run, Outcome(OutcomeStatus.FAILED, error=TaskError(
                type(exc).__name__, f"cannot submit to Dask: {exc}", reason="unavailable")))
            return
        if run.settled:
            self._cancel_future(run)  # cancelled while it was being sent
            return
        client.loop.add_callback(self._track, run)

    def _submitter(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="bgtasks-dask-submit")
            return self._pool

    def cancel(self, task_id: str, grace: float) -> None:
        with self._lock:
            waiting = self._waiting.pop(task_id, None)
            if waiting is not None:
                waiting.settled = True  # never sent: dropped without a done call
                return
            run = self._jobs.get(task_id)
            if run is None or run.cancelling:
                return
            run.cancelling = True
            if not run.claimed:
                del self._jobs[task_id]  # never started: dropped without a done call
                run.settled = True
            claimed = run.claimed
        self._cancel_future(run)
        if claimed:
            # Its worker reports the end (``done`` event); if it cannot (gone meanwhile), this does.
            timer = threading.Timer(2 * max(grace, self.cancel_grace) + 3, self._overdue, (run,))
            timer.daemon = True
            timer.start()

    def shutdown(self, grace: float) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._waiting.clear()  # never sent: they stay pending in the store
            runs = list(self._jobs.values())
        for run in runs:
            self.cancel(run.job.task_id, grace / 2)
        deadline = threading.Event()
        waited = 0.0
        while self._jobs and waited < grace:
            deadline.wait(0.05)
            waited += 0.05
        for run in list(self._jobs.values()):
            self._end(run, Outcome(OutcomeStatus.CANCELLED))
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._thread is not None:
            self._thread.join(self.connect_timeout + 30)
        self._close_client()
        if self.cluster is not None:
            try:
                self.cluster.close()
            except Exception:  # noqa: BLE001
                log.exception("bgtasks: closing the local Dask cluster failed")
            self.cluster = None

    # -- the connection -----------------------------------------------------------------
    def _connect(self) -> Any:
        from distributed import Client

        target: Any = self.scheduler
        if self.scheduler == LOCAL:
            if self.cluster is None:
                self.cluster = self._local_cluster()
            target = self.cluster
        client = Client(target, timeout=self.connect_timeout, set_as_default=False)
        try:
            client.subscribe_topic(self.topic, self._on_event)
            client.subscribe_topic("all", self._on_cluster_event)
            self.address = client.scheduler.address
            self.dashboard = _dashboard(client)
        except BaseException:
            client.close()
            raise
        return client

    def _local_cluster(self) -> Any:
        import dask
        from distributed import LocalCluster

        # A worker that dies under a task fails it here (the engine retries it when it
        # may): Dask must not run it again behind the engine's back.
        # All of it on loopback: Dask's default dashboard address (':0') is every
        # interface, open to anyone who reaches this machine (task names, logs, stacks).
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            return LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING)

    def _connection_loop(self) -> None:
        delay = 1.0
        first = True
        while not self._stop.is_set():
            try:
                client = self._connect()
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, a bad address
                failure = f"{type(exc).__name__}: {exc}"
                client = None
            if client is None:
                # The Client whose constructor failed lingers in a reference cycle (through
                # the exception's frames) and its ``__del__`` takes Dask's loop-runner lock.
                # Collected by chance inside the next Client's start, which holds that lock,
                # it hung this thread for good (and the server's exit after it): collected
                # here instead, where no Dask lock is held.
                gc.collect()
                self._error = (f"the dask executor cannot reach its scheduler ({SETTING} = "
                               f"{self.scheduler!r}): {failure}")
                (log.error if first else log.warning)("bgtasks: %s; trying again in %.0f s", self._error, delay)
                first = False
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_backoff)
                continue
            delay = 1.0
            first = True
            with self._lock:
                self._client = client
                self._error = None
                self.connects += 1
                waiting = list(self._waiting.values())
                self._waiting.clear()
                for run in waiting:
                    self._jobs[run.job.task_id] = run
            for run in waiting:
                self._send(client, run)
            log.info("bgtasks: the dask executor is connected to %s%s", self.address,
                     f" (dashboard {self.dashboard})" if self.dashboard else "")
            while not self._stop.wait(1.0):
                if client.status != "running":
                    break
            if self._stop.is_set():
                return
            self._lost(client)

    def _lost(self, client: Any) -> None:
        with self._lock:
            self._client = None
            self._error = (f"the dask executor lost its scheduler ({SETTING} = {self.scheduler!r}); "
                           "reconnecting")
            runs = list(self._jobs.values())
        log.error("bgtasks: %s", self._error)
        error = TaskError("DaskConnectionLost", f"the connection to the Dask scheduler {self.address} "
                          "was lost while the task ran", reason=INTERRUPTED)
        for run in runs:
            self._end(run, Outcome(OutcomeStatus.CANCELLED) if run.cancelling
                      else Outcome(OutcomeStatus.FAILED, error=error))
        threading.Thread(target=client.close, daemon=True, name="bgtasks-dask-close").start()

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                # Off the 'all' topic first: the scheduler announces this client's own
                # removal there, to this client, already closed (a CRITICAL traceback in
                # the scheduler's log at every stop of the server).
                client.unsubscribe_topic("all")
            except Exception:  # noqa: BLE001 - a link already down: close it all the same
                pass
            try:
                client.close(timeout=5)
            except Exception:  # noqa: BLE001
                log.debug("bgtasks: closing the Dask client failed", exc_info=True)

    # -- on the Dask client's event loop ----------------------------------------------
    async def _track(self, run: _Run) -> None:
        """Wait for the attempt's Dask task; a finished one joins the next batch of
        replies to fetch (one request per worker for all the tasks that ended meanwhile,
        as ``client.gather`` of many futures does, instead of one each)."""
        fut = run.future
        await fut._state.wait()
        if fut.status == "finished":
            self._ready.append(run)
            if len(self._ready) == 1:
                await self._fetch_ready(fut.client)  # (those ending meanwhile join its loop)
            return
        await self._result(run)

    async def _fetch_ready(self, client: Any) -> None:
        while self._ready:
            batch, self._ready = self._ready, []
            try:
                replies = await client._gather([run.future for run in batch])
            except BaseException:  # noqa: BLE001 - one lost result: fetch them one by one
                for run in batch:
                    await self._result(run)
                continue
            for run, reply in zip(batch, replies):
                self._finished(run, reply)

    def _finished(self, run: _Run, reply: dict[str, Any]) -> None:
        if run.worker is None:
            run.worker = reply.get("worker")
        self._end(run, outcome_of(reply), reply.get("progress"), reply.get("log"))

    async def _result(self, run: _Run) -> None:
        """Fetch and report one attempt's reply (or why there is none)."""
        fut = run.future
        try:
            reply = await fut._result()
        except BaseException as exc:  # noqa: BLE001 - CancelledError is a BaseException
            if fut.cancelled():
                self._on_cancelled(run, exc)
                return
            if type(exc).__name__ == "KilledWorker":
                self._end(run, _worker_died(run, f"the Dask worker running it died ({exc})"))
            else:
                self._end(run, Outcome(OutcomeStatus.FAILED, error=TaskError(
                    type(exc).__name__, f"the Dask task failed: {exc}", reason="dask")))
            return
        self._finished(run, reply)

    def _on_cancelled(self, run: _Run, exc: BaseException) -> None:
        if run.cancelling:
            return  # ours: the worker's ``done`` event (or the overdue timer) ends it
        if "connection-lost" in str(exc):
            error = TaskError("DaskConnectionLost", f"the connection to the Dask scheduler "
                              f"{self.address} was lost while the task ran", reason=INTERRUPTED)
        else:  # cancelled by someone else (another client of the cluster)
            error = TaskError("DaskCancelled", f"the Dask task was cancelled outside bgtasks: {exc}",
                              reason=INTERRUPTED)
        self._end(run, Outcome(OutcomeStatus.FAILED, error=error))

    def _on_event(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if not isinstance(msg, dict):
            return
        run = self._jobs.get(msg.get("task_id", ""))
        if run is None or msg.get("attempt") != run.job.attempt:
            return
        op = msg.get("op")
        cb = self._callbacks
        assert cb is not None
        if op == "started":
            self._started(run, str(msg.get("worker")))
        elif not run.claimed:
            return
        elif op == "progress":
            cb.progress(run.job.task_id, msg["current"], msg.get("total"), msg.get("message"))
        elif op == "log":
            cb.log(run.job.task_id, msg["text"])
        elif op == "done":
            self._end(run, outcome_of(msg))

    def _started(self, run: _Run, worker: str) -> None:
        with self._lock:
            first, again = not run.claimed, run.worker is not None and run.worker != worker
            run.claimed = True
            previous, run.worker = run.worker, worker
        if again:
            # Dask ran it again elsewhere: the worker it ran on is gone.
            self._end(run, _worker_died(run, f"the Dask worker {previous} left while running it"))
            return
        assert self._callbacks is not None
        if first and not self._callbacks.claim(run.job.task_id, worker):
            with self._lock:
                run.settled = True
                if self._jobs.get(run.job.task_id) is run:
                    del self._jobs[run.job.task_id]
            self._cancel_future(run)

    def _on_cluster_event(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        worker = msg.get("worker")
        keys = {str(k) for k in msg.get("processing-tasks") or ()}
        for run in list(self._jobs.values()):
            if run.key in keys or (worker is not None and run.worker == worker):
                how = "left the cluster" if msg.get("expected") else "died"
                self._end(run, _worker_died(run, f"the Dask worker {worker} {how} while running it"))

    # -- ends -----------------------------------------------------------------------------
    def _end(self, run: _Run, outcome: Outcome, progress: Any = None, text: str | None = None) -> None:
        """Report ``outcome`` once for ``run``; a run still in Dask is cancelled there."""
        with self._lock:
            if run.settled:
                return
            run.settled = True
            if self._jobs.get(run.job.task_id) is run:
                del self._jobs[run.job.task_id]
        fut = run.future
        if fut is not None and not fut.done():
            self._cancel_future(run)
        self._report(run, outcome, progress, text)

    def _overdue(self, run: _Run) -> None:
        if not run.settled:
            log.warning("bgtasks: the Dask worker never confirmed the cancel of %s", run.job.task_id)
            self._end(run, Outcome(OutcomeStatus.CANCELLED))

    def _report(self, run: _Run, outcome: Outcome, progress: Any = None, text: str | None = None) -> None:
        """Claim ``run`` if it was not (a job that ended before it was announced), send
        what it reported meanwhile (``progress``: ``[current, total, message]``), then
        its end."""
        cb = self._callbacks
        assert cb is not None
        task_id = run.job.task_id
        try:
            if not run.claimed:
                run.claimed = True
                if not cb.claim(task_id, run.worker):
                    return
            if text:
                cb.log(task_id, text)
            if progress:
                cb.progress(task_id, progress[0], progress[1], progress[2])
            cb.done(task_id, outcome)
        except Exception:  # noqa: BLE001 - a failing callback must not stop the client's loop
            log.exception("bgtasks: reporting the end of %s failed", run.job.task_id)

    def _cancel_future(self, run: _Run) -> None:
        client, fut = self._client, run.future
        if client is None or fut is None:
            return
        try:
            client.loop.add_callback(client._cancel, [fut], "bgtasks", "cancelled by bgtasks")
        except Exception:  # noqa: BLE001 - a closed loop: the client's end cancels it anyway
            pass


def _dashboard(client: Any) -> str | None:
    """The scheduler's dashboard URL, only when it serves one (``bokeh`` installed there,
    not ``--no-dashboard``): the client's ``dashboard_link`` guesses one otherwise."""
    try:
        port = client.scheduler_info(n_workers=0)["services"].get("dashboard")
        if not port:
            return None
        link = client.dashboard_link
        return str(link) if link else None
    except Exception:  # noqa: BLE001
        return None


def _worker_died(run: _Run, how: str) -> Outcome:
    if run.cancelling:
        return Outcome(OutcomeStatus.CANCELLED)
    return Outcome(OutcomeStatus.FAILED, error=TaskError("WorkerDied", how, reason=WORKER_DIED))


class DaskOff(Executor):
    """The ``dask`` executor of a server without ``dask_scheduler``: it takes no task, and
    says how to turn it on (the engine refuses ``executor: "dask"`` with this message,
    instead of only listing the executors there are)."""

    name = "dask"
    OFF = (f"the dask executor is off: set {SETTING} to a scheduler address "
           "('tcp://host:8786') or 'local'")

    def __init__(self) -> None:
        self._callbacks: ExecutorCallbacks | None = None

    def unavailable(self) -> str | None:
        return self.OFF

    def start(self, callbacks: ExecutorCallbacks) -> None:
        self._callbacks = callbacks

    def submit(self, job: Job) -> None:
        # A pending dask task from a start when it was on (a recovered one, a retry).
        cb = self._callbacks
        if cb is not None and cb.claim(job.task_id):
            cb.done(job.task_id, Outcome(OutcomeStatus.FAILED, error=TaskError(
                "DaskUnavailable", self.OFF, reason="unavailable")))

    def cancel(self, task_id: str, grace: float) -> None:
        pass

    def shutdown(self, grace: float) -> None:
        pass
