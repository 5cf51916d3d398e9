"""Host-lifetime workers: tasks that run as long as the server does (ABP's
``IBackgroundWorker``, a per-cluster watcher), declared in ``c.BgTasks.workers_at_start``.

Each declared worker is one ordinary task (shown in the panel like any other) with
the key ``worker:<name>``, so the engine keeps it a singleton, and with
:data:`RESTARTS` retries, so the engine's retry back-off restarts it when it fails or
its worker process dies; its ``attempt`` counts the restarts. Nothing here restarts
anything itself: the engine's one retry rule does.

Only the server holding the scheduler lease runs them (several servers on one store
run each worker once): :meth:`HostWorkers.follow` hooks them to the scheduler's lease
attempts. Losing the lease, or stopping, cancels them (their cancel signal and grace);
a worker whose task ended here (finished, failed past its restarts, cancelled by a
user) is not started again until the lease is taken anew (the next server start).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..core.admission import admit
from ..core.errors import BgTasksError, EngineClosed, InvalidInput
from ..core.models import Task, TaskEvent, TaskFilter, TaskSpec
from ..core.states import Category

if TYPE_CHECKING:
    from ..core.engine import Engine
    from .service import Scheduler

log = logging.getLogger(__name__)

RESTARTS = 100
"""Retries of a worker's task (the most admission allows): restarts after a failure."""
KEY_PREFIX = "worker:"
FIELD = "workers_at_start"
"""How errors name the setting (``workers_at_start[0].params.n``)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One declared worker: ``{kind, params, name, executor?}``."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    executor: str | None = None

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.name

    def task_spec(self) -> TaskSpec:
        return TaskSpec(kind=self.kind, params=self.params, name=self.name, key=self.key,
                        executor=self.executor, retries=RESTARTS)

    @classmethod
    def parse(cls, value: Any, where: str) -> WorkerSpec:
        """A worker from config (``where`` prefixes the field in errors)."""
        if isinstance(value, WorkerSpec):
            return value
        if not isinstance(value, Mapping):
            raise InvalidInput(where, "must be an object {kind, params, name, executor?}")
        unknown = sorted(set(value) - {"kind", "params", "name", "executor"})
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]}", "unknown field (kind, params, name, executor)")
        name, kind = value.get("name"), value.get("kind")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}.name", "must be a non-empty string")
        if not isinstance(kind, str) or not kind:
            raise InvalidInput(f"{where}.kind", "must be a kind's name")
        params = value.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidInput(f"{where}.params", "must be an object")
        executor = value.get("executor")
        if executor is not None and not isinstance(executor, str):
            raise InvalidInput(f"{where}.executor", "must be an executor's name")
        return cls(name, kind, dict(params), executor)


class HostWorkers:
    """The declared workers of one server. Parsing checks their shape; :meth:`check`
    their kinds and parameters against the engine (both :class:`InvalidInput` naming
    ``workers_at_start[i].<field>``)."""

    def __init__(self, engine: Engine, specs: Sequence[Mapping[str, Any] | WorkerSpec]) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
            raise InvalidInput(FIELD, "must be a list of {kind, params, name, executor?}")
        self.engine = engine
        self.specs: list[WorkerSpec] = []
        seen: set[str] = set()
        for i, value in enumerate(specs):
            spec = WorkerSpec.parse(value, f"{FIELD}[{i}]")
            if spec.name in seen:
                raise InvalidInput(f"{FIELD}[{i}].name", f"{spec.name!r} is declared twice")
            seen.add(spec.name)
            self.specs.append(spec)
        self._lock = threading.Lock()
        self._running = False
        self._ended: set[str] = set()
        """Workers whose task ended on this server while it ran them: not restarted."""
        self._unsubscribe: Callable[[], None] | None = None

    def check(self) -> None:
        """Refuse what the engine would refuse, before anything starts."""
        engine = self.engine
        for i, spec in enumerate(self.specs):
            try:
                admit(spec.task_spec(), engine.kinds, engine.executors,
                      engine.config.default_executor, engine.config.default_timeout, 0.0)
            except InvalidInput as exc:
                raise InvalidInput(f"{FIELD}[{i}].{exc.field}", exc.reason) from None

    def follow(self, scheduler: Scheduler) -> Callable[[], None]:
        """Run the workers while ``scheduler`` holds the lease; returns the unhook."""
        return scheduler.on_lease(self.lease_changed)

    def lease_changed(self, held: bool) -> None:
        """Called after each lease attempt: start what is missing, or stop."""
        if held:
            self.start()
        else:
            self.stop()

    def start(self) -> list[Task]:
        """Make sure each worker has a live task (idempotent: a live one, here or on
        another server, is kept). Returns this server's worker tasks."""
        # (Never the engine's lock under ours: the engine calls _on_event under its own.)
        with self._lock:
            starting = not self._running
            if starting:
                self._running = True
                self._ended.clear()
        if starting:
            unsubscribe = self.engine.subscribe(self._on_event)
            with self._lock:
                self._unsubscribe = unsubscribe
        with self._lock:
            todo = [s for s in self.specs if s.name not in self._ended]
        mine = {t.key: t for t in self.engine.live_tasks() if t.key is not None}
        out: list[Task] = []
        for spec in todo:
            task = mine.get(spec.key)
            if task is None:
                if self._live_elsewhere(spec):
                    continue
                try:
                    task, new = self.engine.create(spec.task_spec())
                except EngineClosed:
                    return out
                except BgTasksError as exc:
                    log.error("bgtasks: host worker %r cannot start: %s", spec.name, exc)
                    with self._lock:
                        self._ended.add(spec.name)
                    continue
                if new:
                    log.info("bgtasks: host worker %r started (task %s)", spec.name, task.id)
            out.append(task)
        return out

    def stop(self) -> None:
        """Cancel this server's worker tasks (each gets its cancel signal and the
        engine's grace); returns at once."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        keys = {s.key for s in self.specs}
        for task in self.engine.live_tasks():
            if task.key in keys:
                try:
                    self.engine.cancel(task.id)
                except BgTasksError:  # it ended meanwhile
                    pass

    def tasks(self) -> list[Task]:
        """This server's live worker tasks."""
        keys = {s.key for s in self.specs}
        return [t for t in self.engine.live_tasks() if t.key in keys]

    def _live_elsewhere(self, spec: WorkerSpec) -> bool:
        """A live stored task with the worker's key that this engine does not hold: of
        a server that still runs it, or of a dead one that the engine's heartbeat will
        adopt (and its retry rule restart). Either way, not a second one."""
        flt = TaskFilter(states=Category.PENDING.states, key=spec.key)
        return bool(self.engine.store.list(flt, limit=1).tasks)

    def _on_event(self, event: TaskEvent) -> None:
        """Engine listener (under its lock: quick). A worker that ended is not restarted."""
        task = event.task
        if task.terminal and task.key is not None and task.key.startswith(KEY_PREFIX):
            name = task.key[len(KEY_PREFIX):]
            if any(s.name == name for s in self.specs):
                with self._lock:
                    if self._running:
                        self._ended.add(name)
                        log.warning("bgtasks: host worker %r ended (%s); it is not started "
                                    "again until the server restarts", name, task.state.value)
