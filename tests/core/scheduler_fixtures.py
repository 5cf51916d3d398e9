"""What the scheduler tests share: an engine with the test kinds plus ``gate`` (a run
whose length the test decides), on a store and a clock the test gives."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable

from bgtasks_ext.core.admission import admit
from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import Task, TaskFilter, TaskSpec
from bgtasks_ext.core.ports import Store
from bgtasks_ext.core.registry import KindRegistry
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.memory import MemoryStore

from .test_engine import FAST, registry

_gates: dict[str, threading.Event] = {}
_gates_lock = threading.Lock()


def gate(name: str) -> str:
    """Runs until the test opens gate ``name`` (:func:`open_gate`)."""
    with _gates_lock:
        event = _gates.setdefault(name, threading.Event())
    if not event.wait(60):
        raise TimeoutError(f"gate {name} never opened")
    return name


def open_gate(name: str) -> None:
    with _gates_lock:
        _gates.setdefault(name, threading.Event()).set()


def kinds() -> KindRegistry:
    reg = registry()
    reg.register(gate)
    return reg


if hasattr(Engine, "create_run"):
    SchedEngine: type[Engine] = Engine
else:  # until the engine's part of issue 12 lands: the contract's methods, minimally
    class _ShimEngine(Engine):
        server_id: str = ""

        def create_run(self, spec: TaskSpec, schedule_id: str, fire_time: float) -> Task | None:
            spec = replace(spec, schedule_id=schedule_id, scheduled_for=fire_time)
            task = admit(spec, self.kinds, self.executors, self.config.default_executor,
                         self.config.default_timeout, self._clock())
            task = task.evolve(server_id=self.server_id)
            if not self.store.insert_run(task, spec.payload, schedule_id, fire_time):
                return None
            with self._lock:
                self._live[task.id] = task
                if task.key is not None:
                    self._keys[task.key] = task.id
                self._emit("created", task)
            self._schedule(task.id)
            return task

        def lease(self, name: str, ttl: float) -> bool:
            return self.store.lease(name, self.server_id, ttl, self._clock())

        def release(self, name: str) -> None:
            self.store.release(name, self.server_id)

    SchedEngine = _ShimEngine


def make_engine(store: Store | None = None, clock: Callable[[], float] | None = None,
                config: EngineConfig = FAST, server_id: str | None = None,
                executors: dict[str, Any] | None = None) -> Engine:
    kw: dict[str, Any] = {}
    if clock is not None:
        kw["clock"] = clock
    if server_id is not None and "server_id" in EngineConfig.__dataclass_fields__:
        config = replace(config, server_id=server_id)  # type: ignore[call-arg]
    engine = SchedEngine(store or MemoryStore(), executors or {"thread": ThreadExecutor(4)},
                         kinds(), config, **kw)
    if server_id is not None and SchedEngine is not Engine:
        engine.server_id = server_id  # type: ignore[attr-defined]
    return engine


def runs(engine: Engine, schedule_id: str) -> list[Task]:
    """A schedule's runs, oldest first."""
    return list(reversed(engine.store.list(TaskFilter(schedule_id=schedule_id), limit=1000).tasks))
