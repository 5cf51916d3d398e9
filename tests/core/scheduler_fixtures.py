"""What the scheduler tests share: an engine with the test kinds plus ``gate`` (a run
whose length the test decides), on a store and a clock the test gives."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import Task, TaskFilter, new_id
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


def make_engine(store: Store | None = None, clock: Callable[[], float] | None = None,
                config: EngineConfig = FAST, server_id: str | None = None,
                executors: dict[str, Any] | None = None) -> Engine:
    kw: dict[str, Any] = {}
    if clock is not None:
        kw["clock"] = clock
    # A fresh server id per engine, as per server start (FAST's would be shared).
    config = replace(config, server_id=server_id or new_id())
    return Engine(store or MemoryStore(), executors or {"thread": ThreadExecutor(4)},
                  kinds(), config, **kw)


def runs(engine: Engine, schedule_id: str) -> list[Task]:
    """A schedule's runs, oldest first."""
    return list(reversed(engine.store.list(TaskFilter(schedule_id=schedule_id), limit=1000).tasks))
