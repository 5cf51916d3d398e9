"""The engine's side of sharing one store with other servers.

Several servers may run on one store (two ``jupyter lab`` in one home, JupyterHub named
servers). What that asks of an engine, beside its own tasks, is here:

- its lease (:class:`.leases.Heartbeat`), taken before it looks at any task and renewed
  while it runs;
- the *orphans* (live tasks of servers that are gone), adopted at the start and at each
  beat, settled by the one rule (:mod:`.recovery`), the pending ones run here;
- a schedule's run, made once per fire time whichever server tries (the store decides,
  :meth:`.ports.Store.insert_run`);
- named leases, for what one server of several must do alone (firing schedules).

Apart from the engine because it is one concern with its own reasons (see
docs/ARCHITECTURE.md, "Recovery and stop"); it changes states only through what the
engine hands it (``apply``, ``fail``), under the engine's lock, which it is handed too.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Callable, Mapping, Sequence

from . import recovery
from .errors import BgTasksError
from .leases import Heartbeat
from .models import Task, TaskError, TaskSpec
from .ports import Executor, Op, PutTask, Store
from .registry import KindRegistry
from .timers import Timers

log = logging.getLogger(__name__)


class Sharing:
    """One engine among the servers on its store. Every argument but the lease's is the
    engine's own: its lock, live tasks and key index, what can run here (executors,
    kinds), whether it runs, and its change functions (``put``: queue writes;
    ``schedule``: hand a task to its executor; ``fail``: end a task ``failed``)."""

    def __init__(
        self,
        store: Store,
        server_id: str,
        lease_ttl: float,
        clock: Callable[[], float],
        lock: threading.RLock,
        live: dict[str, Task],
        keys: dict[str, str],
        executors: Mapping[str, Executor],
        kinds: KindRegistry,
        running: Callable[[], bool],
        apply: Callable[[Task], Task],
        emit: Callable[[str, Task], None],
        put: Callable[[Sequence[Op]], None],
        schedule: Callable[[str], None],
        fail: Callable[[Task, TaskError], Task],
    ) -> None:
        self.store = store
        self.server_id = server_id
        self._clock = clock
        self._lock = lock
        self._live = live
        self._keys = keys
        self._executors = executors
        self._kinds = kinds
        self._running = running
        self._apply = apply
        self._emit = emit
        self._put = put
        self._schedule = schedule
        self._fail = fail
        self.heartbeat = Heartbeat(store, server_id, lease_ttl, clock, self.adopt_orphans)

    def recover(self) -> tuple[list[Op], list[Task]]:
        """At the start: take this server's lease, then adopt the orphans. Returns the
        writes that settle them and the pending ones to :meth:`run_here` once running."""
        self.heartbeat.take()
        orphans = self.store.adopt_orphans(self.server_id, self._clock())
        changed, pending = recovery.settle(orphans, self._clock(), self.store.started())
        return [PutTask(task) for task in changed], pending

    def run_here(self, pending: list[Task]) -> list[str]:
        """Under the engine lock: take recovered pending tasks live; the ids that can run."""
        return [task.id for task in pending if self._adopt(task)]

    def _adopt(self, task: Task) -> bool:
        """Take a recovered pending task into the live set; returns whether it can run
        here. Fails it when it cannot (:func:`.recovery.unavailable`)."""
        error = recovery.unavailable(task, self._executors, self._kinds, self._keys)
        self._live[task.id] = task
        if error is None:
            if task.key is not None:
                self._keys[task.key] = task.id
            return True
        self._fail(task, error)
        return False

    def adopt_orphans(self) -> None:
        """At a heartbeat: take over the live tasks of servers that died while this one
        runs, settled as at a start (and shown to listeners as they change)."""
        if not self._running():
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
            if not self._running():
                return  # adopted in the store: the next start on it takes them
            by_id = {t.id: t for t in changed}
            for task in orphans:
                new = by_id.get(task.id, task)
                if new.terminal:
                    self._apply(new)
                elif self._adopt(new):
                    if new is not task:  # re-queued for its next attempt
                        self._put([PutTask(new)])
                    self._emit("state", new)
                    runnable.append(new.id)
        for task_id in runnable:
            self._schedule(task_id)

    def create_runs(self, runs: Sequence[tuple[TaskSpec, str, float]],
                    admit: Callable[..., Task]) -> list[Task | BgTasksError | None]:
        """Admit each ``(spec, schedule_id, fire_time)`` (``admit``: the engine's rule; a
        refused one answers its error), store the admitted ones with their fire times in
        one transaction (:meth:`.ports.Store.insert_runs`: ``None`` for a fire time that
        had a run, here or on another server), make them live here in one pass under the
        lock (``created`` events), then dispatch each, in order (see
        :meth:`.engine.Engine.create_runs`)."""
        out: list[Task | BgTasksError | None] = []
        admitted: list[tuple[Task, bytes | None, str, float]] = []
        for spec, schedule_id, fire_time in runs:
            spec = replace(spec, schedule_id=schedule_id, scheduled_for=fire_time)
            try:
                task = admit(spec, server_id=self.server_id)
            except BgTasksError as exc:
                out.append(exc)
                continue
            out.append(task)
            admitted.append((task, spec.payload, schedule_id, fire_time))
        inserted = iter(self.store.insert_runs(admitted))
        made: list[Task | BgTasksError | None] = [
            item if not isinstance(item, Task) or next(inserted) else None for item in out]
        with self._lock:
            if not self._running():
                # Stored, pending, this server's: with its lease released at stop, the
                # next server (or start) on the store adopts and runs them.
                return made
            for item in made:
                if isinstance(item, Task):
                    self._live[item.id] = item
                    if item.key is not None:
                        self._keys.setdefault(item.key, item.id)
                    self._emit("created", item)
        for item in made:
            if isinstance(item, Task):
                self._schedule(item.id)
        return made

    def lease(self, name: str, ttl: float) -> bool:
        """Take or renew lease ``name`` for this server (``False``: another holds it)."""
        return self.store.lease(name, self.server_id, ttl, self._clock())

    def release(self, name: str) -> None:
        """Give lease ``name`` up, if this server holds it."""
        self.store.release(name, self.server_id)

    def start(self, timers: Timers) -> None:
        """Running: beat from now on."""
        self.heartbeat.start(timers)

    def stop(self) -> None:
        """This server's records are final and stored: give its lease up, so what stays
        live (pending) is at once another server's (or the next start's) to adopt."""
        self.heartbeat.stop()
