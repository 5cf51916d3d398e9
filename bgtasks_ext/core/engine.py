"""The engine: the one place that creates tasks and changes their state.

Live (non-terminal) tasks are held in memory under one lock; every change goes
through :meth:`Engine._change`, which checks the transition table, queues the
write for the batching :class:`~.writer.Writer` and tells listeners, in order.
Executors report back through the :class:`~.ports.ExecutorCallbacks`
methods (``claim``, ``progress``, ``log``, ``done``) from any thread; how an attempt's
end becomes the task's next state is decided by :mod:`.policy`, for every path.

The engine is plain threads so it can be driven from anywhere; the server bridges
it to asyncio with :meth:`asubmit` and thread-safe listeners.

What changes no state, or is a path of its own, lives beside it in collaborators
handed the engine's lock and state explicitly: :mod:`.dispatch`, :mod:`.listeners`,
:mod:`.retention`, :mod:`.store_failures`, :mod:`.history`, :mod:`.sharing`. Their
state changes still land through :meth:`Engine._apply`.
"""

from __future__ import annotations

import builtins
import logging
import pickle
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from . import policy, retry
from .admission import admit
from .attempt import too_large
from .config import EngineConfig
from .dispatch import Dispatch
from .errors import BgTasksError, Conflict, EngineClosed, InvalidInput, InvalidTransition, NotFound
from .history import History
from .listeners import Listener, Listeners, LogListener
from .notes import check_note
from .models import LogChunk, Page, Progress, Task, TaskFilter, TaskSpec
from .ports import AppendLog, Executor, Op, Outcome, OutcomeStatus, PutBlob, PutTask, Store
from .registry import KindRegistry
from .retention import Retention
from .sharing import Sharing
from .states import State, advance
from .store_failures import StoreFailures
from .timers import Timers
from .writer import Writer

log = logging.getLogger(__name__)

_PICKLED_NONE = pickle.dumps(None, protocol=pickle.HIGHEST_PROTOCOL)
_NONE_PICKLES = frozenset(pickle.dumps(None, protocol=p) for p in range(2, pickle.HIGHEST_PROTOCOL + 1))
"""Results that are just None: comparing bytes is not loading them."""

_NO_PROGRESS = Progress()

_SCHEDULE = "schedule"
_STORED = "stored"
_LOGGED = "logged"


class Engine:
    """Tasks from creation to their stored end, on one store and its executors."""

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
        self._lock = threading.RLock()
        self._ended = threading.Condition(self._lock)
        self._live: dict[str, Task] = {}
        self._keys: dict[str, str] = {}
        self._persisted_at: dict[str, float] = {}
        self._unstored: dict[str, Task] = {}
        """Tasks ended but not yet committed: :meth:`wait` waits for them too."""
        self._running = False
        self._stopping = False
        self._writer: Writer | None = None
        self._timers: Timers | None = None
        # Collaborators, each handed the state it works on (see their modules).
        self._listeners = Listeners(self._lock)
        self._dispatch = Dispatch(self._lock, self._live, store, self.executors, self.kinds,
                                  config.max_result_bytes, clock, lambda: self._timers,
                                  lambda: self._running, lambda: self.running,
                                  config.kind_settings)
        self._retention = Retention(config, clock)
        self._failures = StoreFailures(self._ended, self._live, self._unstored, clock, self._apply,
                                       self._drop, self._emit, self._cancel_in_executor)
        self._history = History(self._lock, self._unstored, self._failures.unstorable, self.get,
                                lambda ops: self._durable(ops).result(), self._emit)
        self._sharing = Sharing(store, config.server_id, config.lease_ttl, clock, self._lock,
                                self._live, self._keys, self.executors, self.kinds,
                                lambda: self.running, self._apply, self._emit, self._put,
                                self._dispatch.schedule,
                                fail=lambda task, error: self._end(task, State.FAILED, error=error))

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
        ops, pending = self._sharing.recover()
        ops += self._retention.start(self._writer, self._timers)
        self._durable(ops).result()
        self.store.clear_started()  # what the notes spoke for is settled and stored
        with self._lock:
            self._running = True
            runnable = self._sharing.run_here(pending)
        # Off the lock: an executor may claim in the calling thread (see Dispatch.hand_off).
        for task_id in runnable:
            self._dispatch.schedule(task_id)
        self._sharing.start(self._timers)

    def beat(self) -> None:
        """Renew this server's lease and adopt the tasks of servers that are gone, now
        (what the heartbeat does every ``lease_ttl / 3``)."""
        self._sharing.heartbeat.beat(reschedule=False)

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
        self._sharing.stop()
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
        return self._listeners.subscribe(listener)

    def subscribe_logs(self, listener: LogListener) -> Callable[[], None]:
        """Call ``listener(task_ids)`` on the writer thread once per committed batch that
        appended to those tasks' logs: a reader woken by it finds the text stored. Quick,
        like every listener (the writer waits for it)."""
        return self._listeners.subscribe_logs(listener)

    def live_tasks(self) -> list[Task]:
        """A snapshot of every non-terminal task, oldest first."""
        with self._lock:
            return sorted(self._live.values(), key=lambda t: t.id)

    def snapshot(self) -> tuple[int, list[Task]]:
        """Every live task (oldest first) and the ``seq`` of the last event that shaped
        them, read together: a listener that drops events up to that ``seq`` and applies
        the rest on top of the snapshot misses and repeats nothing."""
        with self._lock:
            seq, tasks = self._listeners.seq, list(self._live.values())
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
        """The run of schedule ``schedule_id`` for ``fire_time`` (``None``: that fire time
        has one, made here or by another server on the store); see :meth:`create_runs`."""
        made = self.create_runs([(spec, schedule_id, fire_time)])[0]
        if isinstance(made, BgTasksError):
            raise made
        return made

    def create_runs(self, runs: Sequence[tuple[TaskSpec, str, float]]
                    ) -> list[Task | BgTasksError | None]:
        """Runs for many ``(spec, schedule_id, fire_time)`` (every schedule due at one
        instant), stored with their fire times in one transaction (unique per schedule and
        fire time: ``Store.insert_runs``), then live here as after :meth:`create`. Each
        answer in order: the task, ``None`` (that fire time had a run) or the refusal."""
        self._check_running()
        return self._sharing.create_runs(runs, self._admit)

    def lease(self, name: str, ttl: float) -> bool:
        """Take or renew lease ``name`` in the store for this server (``False``: another
        server holds it). For whatever one server of several must do alone (firing
        schedules, host workers)."""
        return self._sharing.lease(name, ttl)

    def release(self, name: str) -> None:
        """Give lease ``name`` up, if this server holds it."""
        self._sharing.release(name)

    def check(self, spec: TaskSpec) -> None:
        """Raise what :meth:`create` would refuse ``spec`` for; create nothing."""
        self._check_running()
        self._admit(spec)

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
            task = self.get_live(task_id)
        if task is None:
            task = self.store.get(task_id)
        if task is None:
            raise NotFound("task", task_id)
        return task

    def get_live(self, task_id: str) -> Task | None:
        """The task if it is live or just ended (memory only: never touches the store)."""
        return self._live.get(task_id) or self._unstored.get(task_id) or self._failures.unstorable.get(task_id)

    def list(self, flt: TaskFilter = TaskFilter(), limit: int = 100, cursor: str | None = None) -> Page:
        """A page of stored tasks, newest first, with live tasks shown as they are now."""
        page = self.store.list(flt, limit, cursor)
        with self._lock:
            tasks = [self.get_live(t.id) or t for t in page.tasks]
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
        self._history.delete(task_id)
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
                fut = self._durable([PutTask(task)])  # (raises once closed)
                self._live[task_id] = task
                self._emit("note", task)  # in order with the task's other changes
        if task is None:  # ended: serialized with delete, so a note revives no deleted task
            return self._history.set_note(task_id, note)
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
    def claim(self, task_id: str, where: str | None = None) -> bool:
        with self._lock:
            task = self._live.get(task_id)
            if task is None or task.state is not State.PENDING or self._stopping:
                return False
            task = self._change(task, State.RUNNING, started_at=self._clock(), progress=_NO_PROGRESS,
                                placement=where)
            timeout = task.timeout
        if self.executors[task.executor].in_server_process:
            # Its code may take this process down before the running record commits:
            # noted (cheaply, durably) so the next start does not run it again.
            self.store.note_started(task_id, task.attempt)
        if timeout:
            self._dispatch.timer(task_id, timeout, self._on_timeout, task_id, task.attempt)
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
            note = (_LOGGED, task_id) if self._listeners.hear_logs else None
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
        task = self._admit(spec, task_id, self.server_id)
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

    def _admit(self, spec: TaskSpec, task_id: str | None = None,
               server_id: str | None = None) -> Task:
        return admit(spec, self.kinds, self.executors, self.config.default_executor,
                     self.config.default_timeout, self._clock(), task_id, server_id)

    def _durable(self, ops: Sequence[Op]) -> Future[None]:
        """Queue ``ops``; the future is set once they are committed."""
        assert self._writer is not None
        fut = self._writer.put(ops, durable=True)
        assert fut is not None
        return fut

    def _put(self, ops: Sequence[Op]) -> None:
        assert self._writer is not None
        self._writer.put(ops)

    def _check_running(self) -> None:
        if not self._running or self._stopping:
            raise EngineClosed()

    def _emit(self, change: str, task: Task) -> None:
        """Tell listeners, under the lock (see :mod:`.listeners`)."""
        self._listeners.emit(change, task)

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
            self._drop(new)
            self._unstored[new.id] = new
            ops: list[Op] = [PutTask(new)]
            if result is not None and result not in _NONE_PICKLES:
                ops.append(PutBlob(new.id, "result", result))
            ops += self._retention.ended(new)  # (its input's timer, a prune now and then)
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
            self._dispatch.timer(new.id, max(0.0, (new.run_on or 0) - self._clock()),
                                 self._dispatch.due, new.id, new.attempt)
        return new

    def _forget(self, task_id: str) -> None:
        """Drop a task's timers and per-attempt bookkeeping (it ended, or is retried)."""
        self._live.pop(task_id, None)
        self._dispatch.drop_timers(task_id)
        self._persisted_at.pop(task_id, None)

    def _drop(self, task: Task) -> None:
        """Take a task out of the live set and the key index (it ended, or never was)."""
        self._forget(task.id)
        if task.key is not None and self._keys.get(task.key) == task.id:
            del self._keys[task.key]

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
                self._failures.stored(stored)
                self._ended.notify_all()
        if self._listeners.hear_logs:
            self._listeners.logged({task_id for what, task_id in notes if what == _LOGGED})
        if not self._running or self._stopping:
            return
        now = self._clock()
        for what, task_id in notes:
            if what != _SCHEDULE:
                continue
            task = self._live.get(task_id)
            if task is not None and task.state is State.PENDING:
                self._dispatch.start_or_wait(task, now)

    def _after_failure(self, note: Any, task_ids: builtins.set[str], exc: BaseException) -> None:
        """On the writer thread: the store refused a group of writes (see
        :mod:`.store_failures`: memory and store never disagree)."""
        created = note[1] if note is not None and note[0] == _SCHEDULE else None
        self._failures.refused(created, task_ids, exc)

    def _cancel_in_executor(self, task: Task) -> None:
        self.executors[task.executor].cancel(task.id, self.config.cancel_grace)

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` runs (exponential, capped)."""
        return min(self.config.retry_backoff * 2 ** (attempt - 1), self.config.retry_backoff_max)

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
        self._dispatch.timer(task.id, self.config.cancel_grace * 3 + 5, self._force_cancelled,
                             task.id, task.attempt)

    def _force_cancelled(self, task_id: str, attempt: int) -> None:
        with self._lock:
            task = self._live.get(task_id)
            if task is not None and task.attempt == attempt and task.state is State.CANCELLING:
                log.warning("executor %s never confirmed cancel of %s", task.executor, task_id)
                self.done(task_id, Outcome(OutcomeStatus.CANCELLED))
