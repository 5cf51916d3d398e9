"""The scheduler: schedules' CRUD, and the one thread that fires them on time.

**Definitions** live in the engine's store (``PutSchedule``/``DeleteSchedule``), which
is the truth: ``get``/``list`` read it, and a firing re-reads the record it fires, so a
change made by another server on the same store is never overwritten by a stale copy.
Validation is :mod:`..core.schedules`' (a refused change stores nothing), with the
kind, parameters, executor, timeout and retries checked by the engine's own admission
rule, so a schedule can never hold a task the engine would refuse.

**Firing** happens only while this server holds the store lease ``"scheduler"``
(asked for every ``lease_ttl / 4``, held for ``3/4`` of ``lease_ttl``, so that when its
holder dies another server fires within ``lease_ttl``; ``run_schedules=False`` never
takes it), so
of several servers on one store one fires; the store's unique (schedule, fire time)
makes a run once even when two briefly both think they hold it. The thread computes
each enabled schedule's next fire time and sleeps to the earliest, exactly (a
condition wait, woken early by a change or by a run's end): there is no polling tick.
What a wake-up does is :func:`.policy.decide` (misfire, overlap), then
``Engine.create_run`` for the run it names, then :func:`.policy.advance`, stored.

Locks, in the only order they are taken: ``_lock`` (every change of a schedule record:
CRUD and firing) then the engine's lock (``create_run``). The engine calls our task
listener under its lock, so that listener only takes ``_wake`` (which guards nothing
but the wake-up flags) and never ``_lock``.
"""

from __future__ import annotations

import builtins
import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..core.admission import admit
from ..core.errors import BgTasksError, EngineClosed, InvalidInput, NotFound
from ..core.models import TaskEvent, TaskSpec, iso
from ..core.ports import DeleteSchedule, PutBlob, PutSchedule
from ..core.schedules import Overlap, Schedule, ScheduleSpec, make_schedule, patch_schedule, run_spec
from .policy import advance, decide
from .triggers import NEXT_RUNS, trigger_for

if TYPE_CHECKING:
    from ..core.engine import Engine

log = logging.getLogger(__name__)

LEASE = "scheduler"
"""The store lease whose holder fires schedules (and runs the host workers)."""
RENEW_EVERY = 0.25
LEASE_SPAN = 0.75
"""Each lease attempt (every ``RENEW_EVERY * lease_ttl``) holds it for ``LEASE_SPAN *
lease_ttl``: a dead holder's lease lapses within that, and the next attempt of another
server comes within ``RENEW_EVERY`` more, so failover takes at most ``lease_ttl`` (the
holder may miss two renewals before it loses the lease)."""
MAX_SLEEP = 3600.0
"""The longest single wait: a wall clock that jumps is noticed within the hour."""


@dataclass(frozen=True, slots=True)
class ScheduleEvent:
    """One change of one schedule, as the events websocket sends it."""

    change: str
    """``created``, ``updated`` (by a user, or by firing: ``next_fire_at``,
    ``last_run_id``) or ``deleted``."""
    schedule: Schedule


ScheduleListener = Callable[[ScheduleEvent], None]
LeaseListener = Callable[[bool], None]


class Scheduler:
    """Schedules of one engine. ``start()`` after the engine's, ``stop()`` before it.

    ``background=False`` starts no thread: the caller drives :meth:`step` (pure tests
    on a fake clock)."""

    def __init__(self, engine: Engine, *, run_schedules: bool = True, lease_ttl: float = 10.0,
                 clock: Callable[[], float] = time.time, background: bool = True) -> None:
        if isinstance(lease_ttl, bool) or not isinstance(lease_ttl, (int, float)) \
                or not math.isfinite(lease_ttl) or lease_ttl <= 0:
            raise InvalidInput("lease_ttl", "must be a number of seconds above 0")
        self.engine = engine
        self.run_schedules = run_schedules
        self.lease_ttl = float(lease_ttl)
        self._clock = clock
        self._background = background
        self._lock = threading.RLock()
        self._wake = threading.Condition(threading.Lock())
        self._kicked = False
        self._stopped = False
        self._ended: set[str] = set()
        """Schedules (``overlap = queue``) whose run ended since the last step."""
        self._run_ended: dict[str, str] = {}
        """Schedule id -> the id of its run this engine last saw end (cheap liveness)."""
        self._known: dict[str, Schedule] = {}
        """The records the loop sleeps on (a copy of the store's, refreshed at each lease
        attempt and on every local change)."""
        self._listeners: list[ScheduleListener] = []
        self._lease_listeners: list[LeaseListener] = []
        self._holding = False
        self._lease_due = -math.inf
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Read the definitions and, unless ``background=False``, start the loop (which
        takes the lease at once when ``run_schedules``)."""
        if not self.engine.running:
            raise EngineClosed()
        with self._lock:
            self._known = {s.id: s for s in self.engine.store.list_schedules()}
        self._unsubscribe = self.engine.subscribe(self._on_task_event)
        if self._background:
            self._thread = threading.Thread(target=self._loop, name="bgtasks-scheduler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop firing and give the lease up (another server takes it at once)."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._holding:
            self._holding = False
            try:
                self.engine.release(LEASE)
            except Exception:  # the store is going away: the lease lapses by itself
                log.exception("bgtasks: could not release the scheduler lease")
            self._tell_lease(False)

    @property
    def holding(self) -> bool:
        """Whether this server holds the scheduler lease (fires schedules) now."""
        return self._holding

    # -- listeners ---------------------------------------------------------------------
    def subscribe(self, listener: ScheduleListener) -> Callable[[], None]:
        """Call ``listener(event)`` for every change of a schedule made or seen by this
        server, in order, from the thread that made it (quick; it must not call back)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def on_lease(self, listener: LeaseListener) -> Callable[[], None]:
        """Call ``listener(held)`` from the loop after every attempt to take or renew
        the lease (every ``lease_ttl / 4``), and with ``False`` when it is given up.
        How the host workers follow the holder (:class:`.workers.HostWorkers`)."""
        with self._lock:
            self._lease_listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._lease_listeners:
                    self._lease_listeners.remove(listener)

        return unsubscribe

    # -- CRUD --------------------------------------------------------------------------
    def create(self, spec: ScheduleSpec) -> Schedule:
        """Validate and store a new schedule (:class:`InvalidInput` naming the field)."""
        self._check_running()
        schedule = make_schedule(spec, self._clock(), self._check_task)
        schedule = replace(schedule, next_fire_at=_first_fire(schedule))
        ops: list[Any] = [PutSchedule(schedule)]
        if spec.payload is not None:
            ops.append(PutBlob(schedule.id, "input", spec.payload))
        with self._lock:
            self.engine.store.write(ops)
            self._known[schedule.id] = schedule
            self._emit("created", schedule)
        self._kick()
        return schedule

    def get(self, schedule_id: str) -> Schedule:
        schedule = self.engine.store.get_schedule(schedule_id)
        if schedule is None:
            raise NotFound("schedule", schedule_id)
        return schedule

    def list(self) -> list[Schedule]:
        """Every schedule, oldest first."""
        return self.engine.store.list_schedules()

    def patch(self, schedule_id: str, changes: Mapping[str, Any]) -> Schedule:
        """Apply a ``PATCH`` body; a refused one changes nothing stored."""
        if not isinstance(changes, Mapping):
            raise InvalidInput("body", "must be an object of the fields to change")
        self._check_running()
        with self._lock:
            current = self.get(schedule_id)
            new = patch_schedule(current, changes, self._clock(), self._check_task)
            if new.enabled and new.next_fire_at is None:
                new = replace(new, next_fire_at=_first_fire(new))
            self.engine.store.write([PutSchedule(new)])
            self._known[new.id] = new
            self._emit("updated", new)
        self._kick()
        return new

    def delete(self, schedule_id: str) -> None:
        """Remove a schedule (a run it holds back is dropped; its runs stay in history)."""
        self._check_running()
        with self._lock:
            current = self.get(schedule_id)
            self.engine.store.write([DeleteSchedule(schedule_id)])
            self._known.pop(schedule_id, None)
            self._emit("deleted", current)
        self._kick()

    def preview(self, spec: ScheduleSpec) -> builtins.list[float]:
        """The next fire times ``spec`` would have, validated as :meth:`create` does;
        nothing is stored (the form's live preview)."""
        now = self._clock()
        return trigger_for(make_schedule(spec, now, self._check_task)).next_n(now, NEXT_RUNS)

    def next_runs(self, schedule: Schedule) -> builtins.list[float]:
        """Its next fire times from now (none while disabled)."""
        if not schedule.enabled:
            return []
        after = max(self._clock(), schedule.last_fired_at or -math.inf)
        return trigger_for(schedule).next_n(after, NEXT_RUNS)

    def to_json(self, schedule: Schedule) -> dict[str, Any]:
        """The wire form: the record's, plus ``next_runs`` (ISO times) and ``last_run``
        (``{id, state, started_at}``, ``null`` before the first run or once it was
        pruned from history). Reads the store: call it off the event loop."""
        out = schedule.to_json()
        out["next_runs"] = [iso(t) for t in self.next_runs(schedule)]
        out["last_run"] = None
        if schedule.last_run_id is not None:
            try:
                task = self.engine.get(schedule.last_run_id)
            except NotFound:
                pass
            else:
                out["last_run"] = {"id": task.id, "state": task.state.value,
                                   "started_at": iso(task.started_at)}
        return out

    # -- the loop ----------------------------------------------------------------------
    def step(self) -> float:
        """One pass of the loop at ``clock()``: take or renew the lease when due, start
        what is due, and return when the loop must next wake (``inf``: only on a
        change). The thread calls it; pure tests call it themselves."""
        with self._wake:
            self._kicked = False
            ended, self._ended = self._ended, set()
        now = self._clock()
        if now >= self._lease_due:
            self._lease_due = now + self.lease_ttl * RENEW_EVERY
            self._renew()
        if self._holding:
            with self._lock:
                due = sorted(
                    (s.next_fire_at or 0.0, s.id) for s in self._known.values()
                    if s.enabled and ((s.next_fire_at is not None and s.next_fire_at <= now)
                                      or s.id in ended))
            self._fire_all([schedule_id for _, schedule_id in due])
        return self._wake_at()

    def _wake_at(self) -> float:
        wake = self._lease_due
        if self._holding:
            with self._lock:
                for s in self._known.values():
                    if s.enabled and s.next_fire_at is not None and s.next_fire_at < wake:
                        wake = s.next_fire_at
        return wake

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopped:
                    return
            try:
                wake_at = self.step()
            except Exception:  # a store that fails now may not later: keep the loop
                log.exception("bgtasks: the scheduler's step failed")
                wake_at = self._clock() + min(1.0, self.lease_ttl * RENEW_EVERY)
            with self._wake:
                while not (self._stopped or self._kicked or self._ended):
                    delay = wake_at - self._clock()
                    if delay <= 0:
                        break
                    self._wake.wait(min(delay, MAX_SLEEP))

    def _kick(self) -> None:
        """Wake the loop: a schedule changed, so the earliest fire time may have."""
        with self._wake:
            self._kicked = True
            self._wake.notify()

    def _renew(self) -> None:
        """Take or renew the lease; on taking it, decide every schedule once (missed
        fire times follow ``misfire``); at each attempt re-read the definitions, which
        other servers on the store may have changed."""
        held = False
        if self.run_schedules:
            try:
                held = self.engine.lease(LEASE, self.lease_ttl * LEASE_SPAN)
            except Exception:
                log.exception("bgtasks: could not take or renew the scheduler lease")
        taken = held and not self._holding
        if self._holding and not held:
            log.warning("bgtasks: this server lost the scheduler lease: it stops firing")
        self._holding = held
        self._reload()
        if taken:
            log.info("bgtasks: this server now holds the scheduler lease and fires schedules")
            with self._lock:
                ids = [s.id for s in self._known.values() if s.enabled]
            self._fire_all(ids)
        self._tell_lease(held)

    def _reload(self) -> None:
        stored = {s.id: s for s in self.engine.store.list_schedules()}
        with self._lock:
            for schedule_id, old in list(self._known.items()):
                if schedule_id not in stored:
                    del self._known[schedule_id]
                    self._emit("deleted", old)
            for schedule_id, fresh in stored.items():
                known = self._known.get(schedule_id)
                if known != fresh:
                    self._known[schedule_id] = fresh
                    self._emit("created" if known is None else "updated", fresh)

    def _fire_all(self, schedule_ids: builtins.list[str]) -> None:
        """Decide each schedule now, start the runs the decisions name, store the
        results. Every schedule due at one instant is fired together: one read of the
        definitions, one store transaction for all the runs (``Engine.create_runs``),
        one for the schedules' new state; so the hundredth of a hundred schedules due at
        once starts about as soon as the first."""
        if not schedule_ids:
            return
        with self._lock:
            stored_all = {s.id: s for s in self.engine.store.list_schedules()}
            now = self._clock()
            plans: builtins.list[tuple[Schedule, Any]] = []
            runs: builtins.list[tuple[TaskSpec, str, float]] = []
            for schedule_id in schedule_ids:
                stored = stored_all.get(schedule_id)
                if stored is None:  # deleted by another server
                    old = self._known.pop(schedule_id, None)
                    if old is not None:
                        self._emit("deleted", old)
                    continue
                live = stored.overlap is not Overlap.ALLOW and self._live(stored)
                decision = decide(stored, now, live)
                plans.append((stored, decision))
                if decision.start is not None:
                    payload = (self.engine.store.get_blob(stored.id, "input")
                               if stored.has_payload else None)
                    runs.append((run_spec(stored, payload, decision.start), stored.id, decision.start))
            try:
                made = iter(self.engine.create_runs(runs) if runs else [])
            except EngineClosed:
                return
            changed: builtins.list[Schedule] = []
            for stored, decision in plans:
                run_id: str | None = None
                if decision.start is not None:
                    task = next(made)
                    if isinstance(task, BgTasksError):  # its kind or executor went away
                        log.warning("bgtasks: schedule %s (%s) could not start its run for %s: %s",
                                    stored.id, stored.name, iso(decision.start), task)
                    elif task is not None:
                        run_id = task.id
                new = advance(stored, decision, run_id)
                if new != stored:
                    changed.append(new)
                if new != self._known.get(new.id):
                    self._known[new.id] = new
            if changed:
                self.engine.store.write([PutSchedule(new) for new in changed])
            for new in changed:
                self._emit("updated", new)

    def _live(self, schedule: Schedule) -> bool:
        """Whether the schedule's latest run is live (for ``overlap``). Without overlap
        ``allow`` at most one run is live, so its latest is the one to ask about."""
        run_id = schedule.last_run_id
        if run_id is None or self._run_ended.get(schedule.id) == run_id:
            return False
        task = self.engine.get_live(run_id)
        if task is None:  # ended and stored, or another server's
            task = self.engine.store.get(run_id)
        return task is not None and not task.terminal

    def _on_task_event(self, event: TaskEvent) -> None:
        """Engine listener (under the engine's lock: only ``_wake`` here). A run's end
        lets a held run (``overlap = queue``) start at once."""
        task = event.task
        if task.schedule_id is None or not task.terminal:
            return
        with self._wake:
            self._run_ended[task.schedule_id] = task.id
            known = self._known.get(task.schedule_id)  # (a dict read: no lock needed)
            if known is not None and known.overlap is Overlap.QUEUE:
                self._ended.add(task.schedule_id)
                self._wake.notify()

    # -- helpers -------------------------------------------------------------------------
    def _check_running(self) -> None:
        """Changes need the engine's store open (a 503, never a 500, otherwise)."""
        if not self.engine.running:
            raise EngineClosed()

    def _check_task(self, spec: TaskSpec) -> Mapping[str, Any]:
        """The engine's admission rule for the tasks a schedule makes; and no executor that
        runs in a kernel: a run is made by the scheduler, with no kernel there to claim it."""
        engine = self.engine
        task = admit(spec, engine.kinds, engine.executors, engine.config.default_executor,
                     engine.config.default_timeout, self._clock())
        if getattr(engine.executors.get(task.executor), "in_kernel", False):
            raise InvalidInput("executor", f"{task.executor!r} runs a task in the kernel that "
                               "launched it, and a schedule's runs have none: use 'process'")
        return task.params

    def _emit(self, change: str, schedule: Schedule) -> None:
        event = ScheduleEvent(change, schedule)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("schedule event listener failed")

    def _tell_lease(self, held: bool) -> None:
        for listener in list(self._lease_listeners):
            try:
                listener(held)
            except Exception:
                log.exception("lease listener failed")


def _first_fire(schedule: Schedule) -> float | None:
    """The first fire time not dealt with yet: when the loop must look at it."""
    if not schedule.enabled:
        return None
    since = schedule.last_fired_at
    return trigger_for(schedule).next_after(-math.inf if since is None else since)
