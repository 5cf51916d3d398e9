"""The engine: the one place that creates tasks and changes their state.

Live (non-terminal) tasks are held in memory under one lock; every change goes
through :meth:`Engine._change`, which checks the transition table, queues the
write for the batching :class:`~.writer.Writer` and tells listeners, in order.
Executors report back through the :class:`~.ports.ExecutorCallbacks`
methods (``claim``, ``progress``, ``log``, ``done``) from any thread; how an attempt's
end becomes the task's next state is decided by :mod:`.policy`, for every path.

The engine is plain threads so it can be driven from anywhere; the server bridges
it to asyncio with :meth:`asubmit` and thread-safe listeners.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import pickle
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from . import policy, recovery, retry
from .admission import admit
from .attempt import too_large
from .errors import Conflict, EngineClosed, InvalidInput, InvalidTransition, NotFound
from .leases import Heartbeat
from .notes import check_note
from .models import (
    LogChunk,
    Page,
    Progress,
    Task,
    TaskError,
    TaskEvent,
    TaskFilter,
    TaskSpec,
    new_id,
)
from .ports import AppendLog, DeleteTask, DropInputs, Executor, Job, Op, Outcome, OutcomeStatus, Prune, PutBlob, PutTask, Store
from .registry import KindRegistry
from .states import State, advance
from .timers import Timer, Timers
from .writer import Writer

log = logging.getLogger(__name__)

Listener = Callable[[TaskEvent], None]
LogListener = Callable[[set[str]], None]

_PICKLED_NONE = pickle.dumps(None, protocol=pickle.HIGHEST_PROTOCOL)
_NONE_PICKLES = frozenset(pickle.dumps(None, protocol=p) for p in range(2, pickle.HIGHEST_PROTOCOL + 1))
"""Results that are just None: comparing bytes is not loading them."""

_NO_PROGRESS = Progress()

_SCHEDULE = "schedule"
_STORED = "stored"
_LOGGED = "logged"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine's tunables (the server fills them from ``c.BgTasks`` traits)."""

    default_executor: str = "process"
    default_timeout: float | None = None
    log_cap: int = 1_000_000
    """Characters of log kept per task (the newest)."""
    keep: int | None = 10_000
    """Terminal tasks kept in history (``None``: no count limit)."""
    max_age: float | None = 30 * 86_400
    """Seconds a terminal task is kept (``None``: no age limit)."""
    cancel_grace: float = 5.0
    """Seconds a cancelled task gets before the executor escalates."""
    retry_backoff: float = 1.0
    """First retry delay in seconds; doubles each attempt."""
    retry_backoff_max: float = 300.0
    progress_persist_interval: float = 1.0
    """Seconds between two stored progress snapshots of one running task."""
    prune_every: int = 1000
    """Prune history after this many tasks ended (and at start)."""
    max_result_bytes: int = 256 * 2**20
    """The largest pickled result kept; a bigger one fails its task (``result_too_large``)."""
    keep_inputs_for: float | None = 86_400.0
    """Seconds an ended task's ``input`` blob is kept (for a retry): 0 drops it as the task
    ends, ``None`` keeps it as long as the task."""
    server_id: str = field(default_factory=new_id)
    """This server among those sharing the store: its tasks record it (fresh per start)."""
    lease_ttl: float = 10.0
    """Seconds this server's lease lasts unrenewed (renewed every third of it): when it
    dies, another server on the store adopts its tasks within this time."""


class Engine:
    def __init__(
        self,
        store: Store,
        executors: Mapping[str, Executor],
        kinds: KindRegistry | None = None,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = config if config is not None else EngineConfig()  # (a fresh server_id)
        if config.default_executor not in executors:
            raise InvalidInput(
                "default_executor",
                f"{config.default_executor!r} is not one of {sorted(executors)}",
            )
        self.store = store
        self.executors = dict(executors)
        self.kinds = kinds if kinds is not None else KindRegistry.from_entry_points()
        self.config = config
        self.server_id = config.server_id
        self._clock = clock
        self._heartbeat = Heartbeat(store, config.server_id, config.lease_ttl, clock,
                                    self._adopt_orphans)
        self._lock = threading.RLock()
        self._ended = threading.Condition(self._lock)
        self._history = threading.Lock()
        """Serializes the changes of ended tasks' records (a note, a delete)."""
        self._live: dict[str, Task] = {}
        self._keys: dict[str, str] = {}
        self._timers_by_task: dict[str, list[Timer]] = {}
        self._persisted_at: dict[str, float] = {}
        self._unstored: dict[str, Task] = {}
        self._store_failures: set[str] = set()
        self._unstorable: dict[str, Task] = {}
        """Ended tasks whose end the store refused twice: shown from memory."""
        """Tasks ended but not yet committed: :meth:`wait` waits for them too."""
        self._listeners: list[Listener] = []
        self._log_listeners: list[LogListener] = []
        self._seq = 0
        self._ended_since_prune = 0
        self._running = False
        self._stopping = False
        self._writer: Writer | None = None
        self._timers: Timers | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        """Open the store, take this server's lease, recover the tasks of servers that
        are gone (never those of another server still running on the store: see
        :mod:`.recovery`), start executors and the heartbeat."""
        self.store.open()
        self._writer = Writer(self.store, self._after_commit, self._after_failure)
        self._timers = Timers(self._clock)
        for executor in self.executors.values():
            executor.start(self)
        self._heartbeat.take()
        orphans = self.store.adopt_orphans(self.server_id, self._clock())
        changed, pending = recovery.settle(orphans, self._clock(), self.store.started())
        ops: list[Op] = [PutTask(task) for task in changed]
        ops.append(Prune(self.config.keep, self._prune_before()))
        now, keep_inputs = self._clock(), self.config.keep_inputs_for
        if keep_inputs is not None:
            # Inputs whose timers a previous run took with it: the old ones now, the
            # rest (ended before this start) once their retention has passed.
            ops.append(DropInputs(now - keep_inputs))
            if keep_inputs > 0:
                self._timers.at(now + keep_inputs, self._drop_inputs, now, None)
        fut = self._writer.put(ops, durable=True)
        assert fut is not None
        fut.result()
        self.store.clear_started()  # what the notes spoke for is settled and stored
        with self._lock:
            self._running = True
            runnable = [task.id for task in pending if self._adopt(task)]
        # Off the lock: an executor may claim in the calling thread (see _hand_off).
        for task_id in runnable:
            self._schedule(task_id)
        self._heartbeat.start(self._timers)

    def beat(self) -> None:
        """Renew this server's lease and adopt the tasks of servers that are gone, now
        (what the heartbeat does every ``lease_ttl / 3``)."""
        self._heartbeat.beat(reschedule=False)

    def _adopt_orphans(self) -> None:
        """At a heartbeat: take over the live tasks of servers that died while this one
        runs, settled as at a start (and shown to listeners as they change)."""
        if not self.running:
            return
        now = self._clock()
        with self._lock:
            mine = set(self._live)
        orphans = [t for t in self.store.adopt_orphans(self.server_id, now) if t.id not in mine]
        if not orphans:
            return
        log.warning("bgtasks: adopting %d task(s) of a server that is gone", len(orphans))
        changed, pending = recovery.settle(orphans, now, self.store.started())
        runnable = []
        with self._lock:
            if not self.running:
                return  # adopted in the store: the next start on it takes them
            by_id = {t.id: t for t in changed}
            for task in orphans:
                new = by_id.get(task.id, task)
                if new.terminal:
                    self._apply(new)
                elif self._adopt(new):
                    if new is not task:  # re-queued for its next attempt
                        assert self._writer is not None
                        self._writer.put([PutTask(new)])
                    self._emit("state", new)
                    runnable.append(new.id)
        for task_id in runnable:
            self._schedule(task_id)

    def stop(self, grace: float | None = None) -> None:
        """Stop: running tasks get their cancel signal and ``grace`` seconds; what they
        do not finish by then is recorded as interrupted. Pending tasks stay pending."""
        grace = self.config.cancel_grace if grace is None else grace
        with self._lock:
            if not self._running:
                return
            self._stopping = True
        for executor in self.executors.values():
            executor.shutdown(grace)
        with self._lock:
            self._running = False
            now = self._clock()
            for task in list(self._live.values()):
                if task.state in (State.RUNNING, State.CANCELLING):
                    self._apply(policy.interrupted(task, now))
        assert self._timers is not None and self._writer is not None
        self._timers.close()
        self._writer.close()
        # Its records final and stored: what stays live (pending) is free to adopt.
        self._heartbeat.stop()
        self.store.close()

    @property
    def running(self) -> bool:
        """Started and not stopping."""
        return self._running and not self._stopping

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- listeners --------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every change, in order, from the thread that
        made it (under the engine lock: it must be quick and must not call back)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def subscribe_logs(self, listener: LogListener) -> Callable[[], None]:
        """Call ``listener(task_ids)`` on the writer thread once per committed batch that
        appended to those tasks' logs: a reader woken by it finds the text stored. Quick,
        like every listener (the writer waits for it)."""
        with self._lock:
            self._log_listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._log_listeners:
                    self._log_listeners.remove(listener)

        return unsubscribe

    def live_tasks(self) -> list[Task]:
        """A snapshot of every non-terminal task, oldest first."""
        with self._lock:
            return sorted(self._live.values(), key=lambda t: t.id)

    def snapshot(self) -> tuple[int, list[Task]]:
        """Every live task (oldest first) and the ``seq`` of the last event that shaped
        them, read together: a listener that drops events up to that ``seq`` and applies
        the rest on top of the snapshot misses and repeats nothing."""
        with self._lock:
            seq, tasks = self._seq, list(self._live.values())
        tasks.sort(key=lambda t: t.id)
        return seq, tasks

    # -- the public API -----------------------------------------------------------
    def create(self, spec: TaskSpec, task_id: str | None = None) -> tuple[Task, bool]:
        """Validate and queue a task; returns it and whether it is new (``False`` when
        a live task already holds ``spec.key``). Returns once the task is durable.
        ``task_id``: an id made by :func:`.models.new_id` and reserved for it (the
        server's reservation table is the only caller that hands one in)."""
        task, waiter = self._enqueue(spec, asynchronous=False, task_id=task_id)
        if waiter is None:
            return task, False
        waiter.result()  # type: ignore[union-attr]
        return task, True

    def create_run(self, spec: TaskSpec, schedule_id: str, fire_time: float) -> Task | None:
        """Create the run of schedule ``schedule_id`` for ``fire_time`` (``spec``: its
        task, see ``schedules.run_spec``), unless that fire time has a run already, made
        here or by another server on the store: then ``None``. The store decides, in one
        transaction (:meth:`.ports.Store.insert_run`); once it is durable the task is
        live here as after :meth:`create` (``created`` event, then dispatched)."""
        spec = replace(spec, schedule_id=schedule_id, scheduled_for=fire_time)
        self._check_running()
        task = admit(spec, self.kinds, self.executors, self.config.default_executor,
                     self.config.default_timeout, self._clock(), server_id=self.server_id)
        if not self.store.insert_run(task, spec.payload, schedule_id, fire_time):
            return None
        with self._lock:
            if not self.running:
                # Stored, pending, this server's: with its lease released at stop, the
                # next server (or start) on the store adopts and runs it.
                return task
            self._live[task.id] = task
            if task.key is not None:
                self._keys.setdefault(task.key, task.id)
            self._emit("created", task)
        self._schedule(task.id)
        return task

    def lease(self, name: str, ttl: float) -> bool:
        """Take or renew lease ``name`` in the store for this server (``False``: another
        server holds it). For whatever one server of several must do alone (firing
        schedules, host workers)."""
        return self.store.lease(name, self.server_id, ttl, self._clock())

    def release(self, name: str) -> None:
        """Give lease ``name`` up, if this server holds it."""
        self.store.release(name, self.server_id)

    def check(self, spec: TaskSpec) -> None:
        """Raise what :meth:`create` would refuse ``spec`` for; create nothing."""
        self._check_running()
        admit(spec, self.kinds, self.executors, self.config.default_executor,
              self.config.default_timeout, self._clock())

    def submit(self, spec: TaskSpec) -> Task:
        """:meth:`create`, returning only the task."""
        return self.create(spec)[0]

    async def acreate(self, spec: TaskSpec, task_id: str | None = None) -> tuple[Task, bool]:
        """:meth:`create` for asyncio: the loop never waits on the commit."""
        task, waiter = self._enqueue(spec, asynchronous=True, task_id=task_id)
        if waiter is None:
            return task, False
        await waiter  # type: ignore[misc]
        return task, True

    async def asubmit(self, spec: TaskSpec) -> Task:
        return (await self.acreate(spec))[0]

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self._live.get(task_id) or self._unstored.get(task_id) or self._unstorable.get(task_id)
        if task is None:
            task = self.store.get(task_id)
        if task is None:
            raise NotFound("task", task_id)
        return task

    def get_live(self, task_id: str) -> Task | None:
        """The task if it is live or just ended (memory only: never touches the store)."""
        return self._live.get(task_id) or self._unstored.get(task_id) or self._unstorable.get(task_id)

    def list(self, flt: TaskFilter = TaskFilter(), limit: int = 100, cursor: str | None = None) -> Page:
        """A page of stored tasks, newest first, with live tasks shown as they are now."""
        page = self.store.list(flt, limit, cursor)
        with self._lock:
            tasks = [self._live.get(t.id) or self._unstored.get(t.id) or self._unstorable.get(t.id) or t
                     for t in page.tasks]
        return Page([t for t in tasks if flt.matches(t)], page.next_cursor)

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending or running task. Raises :class:`InvalidTransition` (409) for a
        terminal one. A running task becomes ``cancelling`` until its executor stops it."""
        grace = self.config.cancel_grace
        with self._lock:
            task = self._live.get(task_id)
            if task is None:
                stored = self.get(task_id)  # NotFound if unknown
                if not stored.terminal and stored.server_id not in (None, self.server_id):
                    raise Conflict(f"task {task_id} is {stored.state.value} on another server "
                                   f"({stored.server_id}) sharing this store: cancel it there")
                raise InvalidTransition(stored.state.value, State.CANCELLED.value)
            if task.state is State.CANCELLING:
                return task
            if task.state is State.PENDING:
                return self._end(task, State.CANCELLED, cancel_reason=policy.BY_USER)
            task = self._change(task, State.CANCELLING, cancel_reason=policy.BY_USER)
            self._safety_net(task)
        # Outside the lock: executors take their own locks and call back into ours.
        self.executors[task.executor].cancel(task_id, grace)
        return task

    def interrupt(self, task_id: str, message: str) -> Task | None:
        """The place a running task ran in went away under it (its kernel died): end the
        attempt as an interrupted one (:func:`.policy.interrupted`: a cancel under way
        completes, else a failure with reason ``interrupted``, retried while retries
        remain). A pending task is left alone. Returns the new record, ``None`` when
        the task is not live."""
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is State.PENDING:
                return None
            return self._apply(policy.interrupted(task, self._clock(), message))

    def delete(self, task_id: str) -> Task | None:
        """Pending/running: cancel (returns the task). Terminal: remove it from history
        (returns ``None`` once the removal is durable)."""
        with self._lock:
            live = task_id in self._live
        if live:
            return self.cancel(task_id)
        with self._history:
            task = self.get(task_id)
            assert self._writer is not None
            fut = self._writer.put([DeleteTask(task_id)], durable=True)
            assert fut is not None
            fut.result()
            with self._lock:
                self._emit("deleted", task)
        return None

    def set_note(self, task_id: str, note: str | None) -> Task:
        """Set (``None`` or ``""``: clear) what the task's notebook says about it
        (:mod:`.notes`), in any state, changing nothing else of it. Returns the task once
        the note is durable; listeners get a ``note`` event. A live task's later records
        evolve from this one, so they carry it."""
        note = check_note(note)
        assert self._writer is not None
        with self._lock:
            task = self._live.get(task_id)
            if task is not None:
                task = task.evolve(note=note)
                fut = self._writer.put([PutTask(task)], durable=True)  # (raises once closed)
                self._live[task_id] = task
                self._emit("note", task)  # in order with the task's other changes
        if task is None:  # ended: serialized with delete, so a note revives no deleted task
            with self._history:
                with self._lock:
                    ended = self._unstored.get(task_id) or self._unstorable.get(task_id)
                task = (ended or self.get(task_id)).evolve(note=note)
                with self._lock:
                    for memory in (self._unstored, self._unstorable):
                        if task_id in memory:  # (not once stored meanwhile)
                            memory[task_id] = task
                fut = self._writer.put([PutTask(task)], durable=True)
                assert fut is not None
                fut.result()
                with self._lock:
                    self._emit("note", task)
            return task
        assert fut is not None
        fut.result()
        return task

    def wait(self, task_id: str, timeout: float | None = None) -> Task:
        """Block until the task is terminal and stored; returns its final record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ended:
            while task_id in self._live or task_id in self._unstored:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} has not ended and been stored yet")
                self._ended.wait(left)
        return self.get(task_id)

    def read_log(self, task_id: str, offset: int = 0, limit: int | None = None) -> LogChunk:
        self.get(task_id)
        self._await_stored(task_id)
        return self.store.read_log(task_id, offset, limit)

    def _await_stored(self, task_id: str, timeout: float = 30.0) -> None:
        """A task's end is announced before its batch commits: whoever reads its log or
        result on hearing of it must see everything it wrote, so wait for the commit."""
        deadline = time.monotonic() + timeout
        with self._ended:
            while task_id in self._unstored:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"task {task_id} was not stored in {timeout:g} s")
                self._ended.wait(left)

    def retry_spec(self, task_id: str, owner: str | None = None, kernel_alive: bool = False) -> TaskSpec:
        """The spec of a new run of an ended task, with its stored input (rules in
        :mod:`.retry`); :meth:`create` it. Reads the store: call it off the event loop."""
        task = self.get(task_id)
        self._await_stored(task_id)
        executor = self.executors.get(task.executor)
        payload = self.store.get_blob(task_id, "input") if task.has_payload and task.terminal else None
        return retry.retry_spec(task, payload, in_kernel=None if executor is None else executor.in_kernel,
                                kind_known=task.kind in self.kinds, owner=owner, kernel_alive=kernel_alive)

    def result_payload(self, task_id: str) -> bytes | None:
        """The pickled result (opaque bytes: the server never loads them)."""
        task = self.get(task_id)
        if task.state is not State.FINISHED:
            raise Conflict(f"task {task_id} is {task.state.value}, not finished")
        self._await_stored(task_id)
        payload = self.store.get_blob(task_id, "result")
        # A None result is not stored (most tasks return nothing): hand out its pickle.
        return _PICKLED_NONE if payload is None else payload

    def flush(self) -> None:
        """Wait until every change so far is stored."""
        assert self._writer is not None
        self._writer.flush()

    # -- ExecutorCallbacks ------------------------------------------------------------
    def claim(self, task_id: str) -> bool:
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or self._stopping:
                return False
            task = self._change(task, State.RUNNING, started_at=self._clock(), progress=_NO_PROGRESS)
            timeout = task.timeout
        if self.executors[task.executor].in_server_process:
            # Its code may take this process down before the running record commits:
            # noted (cheaply, durably) so the next start does not run it again.
            self.store.note_started(task_id, task.attempt)
        if timeout:
            self._timer(task_id, timeout, self._on_timeout, task_id, task.attempt)
        return True

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state not in (State.RUNNING, State.CANCELLING):
                return
            old = task.progress
            task = task.evolve(
                progress=Progress.of(current, total, old.message if message is None else message),
            )
            self._live[task_id] = task
            now = self._clock()
            if now - self._persisted_at.get(task_id, 0.0) >= self.config.progress_persist_interval:
                self._persisted_at[task_id] = now
                assert self._writer is not None
                self._writer.put([PutTask(task)])
            self._emit("progress", task)

    def log(self, task_id: str, text: str) -> None:
        if self._writer is not None and text:
            # A note only when someone listens: it costs an after-commit call per batch.
            note = (_LOGGED, task_id) if self._log_listeners else None
            self._writer.put([AppendLog(task_id, text, self.config.log_cap)], note=note)

    def done(self, task_id: str, outcome: Outcome) -> None:
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state not in (State.RUNNING, State.CANCELLING):
                return  # already ended (forced cancel, stop) — a late report changes nothing
            if outcome.result is not None and len(outcome.result) > self.config.max_result_bytes:
                outcome = too_large(len(outcome.result), self.config.max_result_bytes)
            now = self._clock()
            new = policy.after_attempt(task, outcome, now, stopping=self._stopping,
                                       retry_at=now + self._backoff(task.attempt))
            self._apply(new, outcome.result if new.state is State.FINISHED else None)

    # -- internals -----------------------------------------------------------------
    def _enqueue(self, spec: TaskSpec, asynchronous: bool, task_id: str | None = None) -> tuple[Task, Any]:
        """Make the task live and queue its first writes, under the lock so that no later
        change of it can be queued first. Returns the task and a future of the commit
        (``None`` when ``key`` matched a live task, which is returned instead)."""
        task = admit(spec, self.kinds, self.executors, self.config.default_executor,
                     self.config.default_timeout, self._clock(), task_id, self.server_id)
        ops: list[Op] = [PutTask(task)]
        if spec.payload is not None:
            ops.append(PutBlob(task.id, "input", spec.payload))
        writer = self._writer
        with self._lock:
            self._check_running()
            if task.key is not None and task.key in self._keys:
                return self._live[self._keys[task.key]], None
            if task.id in self._live or task.id in self._unstored:
                raise Conflict(f"task id {task.id} is taken")
            self._live[task.id] = task
            if task.key is not None:
                self._keys[task.key] = task.id
            assert writer is not None
            note = (_SCHEDULE, task.id)
            if asynchronous:
                waiter: Any = writer.put_async(ops, note)
            else:
                waiter = writer.put(ops, durable=True, note=note)
            self._emit("created", task)
        return task, waiter

    def _check_running(self) -> None:
        if not self._running or self._stopping:
            raise EngineClosed()

    def _emit(self, change: str, task: Task) -> None:
        self._seq += 1
        event = TaskEvent(self._seq, change, task)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("task event listener failed")

    def _change(self, task: Task, state: State, **fields: Any) -> Task:
        """Apply one allowed, non-terminal state change to a live task."""
        return self._apply(task.evolve(state=advance(task.state, state), **fields))

    def _end(self, task: Task, state: State, **fields: Any) -> Task:
        """Move a live task to a terminal state."""
        return self._apply(task.evolve(state=advance(task.state, state),
                                       finished_at=self._clock(), **fields))

    def _apply(self, new: Task, result: bytes | None = None) -> Task:
        """Make ``new`` (a live task's next record, its state already checked by
        :func:`.states.advance`) the truth: store it, tell listeners, and keep the live
        set, timers and waiters in step. The one place a record's change lands."""
        if new.terminal:
            self._forget(new.id)
            if new.key is not None and self._keys.get(new.key) == new.id:
                del self._keys[new.key]
            self._unstored[new.id] = new
            ops: list[Op] = [PutTask(new)]
            if result is not None and result not in _NONE_PICKLES:
                ops.append(PutBlob(new.id, "result", result))
            if new.has_payload and self.config.keep_inputs_for is not None:
                ended_at = new.finished_at or self._clock()
                if self.config.keep_inputs_for <= 0:
                    ops.append(DropInputs(ended_at, new.id))
                elif self._timers is not None:
                    with contextlib.suppress(EngineClosed):  # stopped: the next start sweeps
                        self._timers.at(ended_at + self.config.keep_inputs_for,
                                        self._drop_inputs, ended_at, new.id)
            self._ended_since_prune += 1
            if self._ended_since_prune >= self.config.prune_every:
                self._ended_since_prune = 0
                ops.append(Prune(self.config.keep, self._prune_before()))
            assert self._writer is not None
            self._writer.put(ops, note=(_STORED, new.id))
            self._emit("state", new)
            return new
        old = self._live.get(new.id)
        retried = new.state is State.PENDING and old is not None and old.attempt != new.attempt
        if retried:
            self._forget(new.id)  # the last attempt's timers; the task stays live
        self._live[new.id] = new
        assert self._writer is not None
        self._writer.put([PutTask(new)])
        self._emit("state", new)
        if retried and self._running and not self._stopping:
            self._timer(new.id, max(0.0, (new.run_on or 0) - self._clock()),
                        self._dispatch, new.id, new.attempt)
        return new

    def _forget(self, task_id: str) -> None:
        """Drop a task's timers and per-attempt bookkeeping (it ended, or is retried)."""
        self._live.pop(task_id, None)
        for timer in self._timers_by_task.pop(task_id, ()):
            timer.cancel()
        self._persisted_at.pop(task_id, None)

    def _after_commit(self, notes: builtins.list[tuple[str, str]]) -> None:
        """On the writer thread, once per committed batch: start the tasks whose first
        write is now durable, and wake :meth:`wait` callers whose task is now stored.

        Starting needs no lock: a task read here may be cancelled a moment later, and
        then its executor's ``claim`` fails, which is the check that counts. Holding the
        lock across a batch of thousands would stall every executor thread meanwhile."""
        stored = [task_id for what, task_id in notes if what == _STORED]
        if stored:
            with self._ended:
                for task_id in stored:
                    self._unstored.pop(task_id, None)
                if self._store_failures:
                    self._store_failures.difference_update(stored)
                self._ended.notify_all()
        if self._log_listeners:
            logged = {task_id for what, task_id in notes if what == _LOGGED}
            for listener in list(self._log_listeners) if logged else ():
                try:
                    listener(logged)
                except Exception:
                    log.exception("log listener failed")
        if not self._running or self._stopping:
            return
        now = self._clock()
        for what, task_id in notes:
            if what != _SCHEDULE:
                continue
            task = self._live.get(task_id)
            if task is not None and task.state is State.PENDING:
                self._start_or_wait(task, now)

    def _after_failure(self, note: Any, task_ids: builtins.set[str], exc: BaseException) -> None:
        """On the writer thread: the store refused a group of writes. A task whose
        creation was refused never existed (its creator got the error); any other task
        in the group ends ``failed`` with reason ``store_error``, so memory and store
        never disagree."""
        if note is not None and note[0] == _SCHEDULE:
            with self._lock:
                task = self._live.get(note[1])
                if task is not None and task.state is State.PENDING:
                    self._forget(task.id)
                    if task.key is not None and self._keys.get(task.key) == task.id:
                        del self._keys[task.key]
                    self._emit("deleted", task)
                task_ids = task_ids - {note[1]}
        if task_ids:
            self._store_failed(sorted(task_ids), f"the task store could not write it: {exc}")

    def _store_failed(self, task_ids: builtins.list[str], why: str) -> None:
        still_running: builtins.list[Task] = []
        with self._ended:
            now = self._clock()
            for task_id in task_ids:
                if task_id in self._store_failures:
                    # Even its failure could not be stored: stop trying, release waiters;
                    # this server shows the failure from memory (the next start, finding
                    # the stored record live, settles it as interrupted).
                    log.error("bgtasks: task %s could not be stored at all", task_id)
                    ended = self._unstored.pop(task_id, None)
                    if ended is not None:
                        self._unstorable[task_id] = ended
                    self._store_failures.discard(task_id)
                    self._ended.notify_all()
                    continue
                task = self._live.get(task_id) or self._unstored.get(task_id)
                if task is None:
                    continue
                self._store_failures.add(task_id)
                self._live[task_id] = task  # live again until its failure is stored
                self._apply(policy.store_failed(task, now, why))
                if task.state in (State.RUNNING, State.CANCELLING):
                    still_running.append(task)  # its code runs on: stop it
        for task in still_running:  # (outside the lock: executors call back into it)
            self.executors[task.executor].cancel(task.id, self.config.cancel_grace)

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` runs (exponential, capped)."""
        return min(self.config.retry_backoff * 2 ** (attempt - 1), self.config.retry_backoff_max)

    def _adopt(self, task: Task) -> bool:
        """Take a recovered pending task into the live set; returns whether it can run
        here. Fails it when it cannot (:func:`.recovery.unavailable`)."""
        error = recovery.unavailable(task, self.executors, self.kinds, self._keys)
        self._live[task.id] = task
        if error is None:
            if task.key is not None:
                self._keys[task.key] = task.id
            return True
        self._end(task, State.FAILED, error=error)
        return False

    def _schedule(self, task_id: str) -> None:
        """Hand a pending task to its executor now, or at its ``run_on`` time."""
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or not self._running:
                return
        self._start_or_wait(task, self._clock())

    def _dispatch(self, task_id: str, attempt: int) -> None:
        """A timer's due: start the task if it is still that pending attempt."""
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or task.attempt != attempt:
                return
            if not self._running or self._stopping:
                return
        self._hand_off(task)

    def _start_or_wait(self, task: Task, now: float) -> None:
        delay = (task.run_on or 0) - now
        if delay > 0:
            self._timer(task.id, delay, self._dispatch, task.id, task.attempt)
        else:
            self._hand_off(task)

    def _hand_off(self, task: Task) -> None:
        """Give a pending task's job to its executor. Never under the engine lock: the
        payload is read from the store, and an executor may start the job (and call
        ``claim``) in this very thread — from the writer thread, right after the task's
        commit, that saves a thread hop on every task."""
        payload = self.store.get_blob(task.id, "input") if task.has_payload else None
        self.executors[task.executor].submit(Job(
            task_id=task.id, kind=task.kind, ref=self.kinds.get(task.kind).ref,
            params=task.params, payload=payload, python=task.python, cwd=task.cwd,
            attempt=task.attempt, max_result_bytes=self.config.max_result_bytes,
        ))

    def _timer(self, task_id: str, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        assert self._timers is not None
        timer = self._timers.after(delay, fn, *args)
        with self._lock:
            self._timers_by_task.setdefault(task_id, []).append(timer)

    def _on_timeout(self, task_id: str, attempt: int) -> None:
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.attempt != attempt or task.state is not State.RUNNING:
                return
            task = self._change(task, State.CANCELLING, cancel_reason=policy.BY_TIMEOUT)
            self._safety_net(task)
        self.executors[task.executor].cancel(task_id, self.config.cancel_grace)

    def _safety_net(self, task: Task) -> None:
        """An executor that never confirms a cancel is overruled: after its two grace
        periods (cooperative, then the signal) and a margin, the task ends anyway."""
        self._timer(task.id, self.config.cancel_grace * 3 + 5, self._force_cancelled, task.id, task.attempt)

    def _force_cancelled(self, task_id: str, attempt: int) -> None:
        with self._lock:
            task = self._live.get(task_id)
            if task is not None and task.attempt == attempt and task.state is State.CANCELLING:
                log.warning("executor %s never confirmed cancel of %s", task.executor, task_id)
                self.done(task_id, Outcome(OutcomeStatus.CANCELLED))

    def _drop_inputs(self, before: float, task_id: str | None) -> None:
        """A timer's due: an ended task's input retention has passed (see :class:`DropInputs`)."""
        if self._writer is not None:
            with contextlib.suppress(EngineClosed):
                self._writer.put([DropInputs(before, task_id)])

    def _prune_before(self) -> float | None:
        return None if self.config.max_age is None else self._clock() - self.config.max_age
