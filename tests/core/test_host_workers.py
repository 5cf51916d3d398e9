"""Host-lifetime workers (``c.BgTasks.workers_at_start``): what a declaration must be,
and that only the scheduler lease holder runs them, once across servers on one store.
Fake clock, memory store, thread executor; restarts after a worker process's death
are in tests/faults/test_host_worker.py."""

from __future__ import annotations

from typing import Any

import pytest

from bgtasks_ext.core.engine import Engine
from bgtasks_ext.core.errors import InvalidInput
from bgtasks_ext.core.models import TaskFilter
from bgtasks_ext.core.states import Category, State
from bgtasks_ext.scheduling.service import Scheduler
from bgtasks_ext.scheduling.workers import HostWorkers
from bgtasks_ext.store.memory import MemoryStore

from .scheduler_fixtures import make_engine
from .test_context import FakeClock

LONG = {"kind": "steps", "name": "watcher", "params": {"n": 10**7, "pause": 0.01}}
"""A worker that runs until cancelled (it reports progress, where a cancel lands)."""


@pytest.mark.parametrize("specs, field", [
    ({"kind": "noop", "name": "a"}, "workers_at_start"),
    (["noop"], "workers_at_start[0]"),
    ([{"kind": "noop"}], "workers_at_start[0].name"),
    ([{"name": "a"}], "workers_at_start[0].kind"),
    ([{"kind": "noop", "name": "a", "every": 3}], "workers_at_start[0].every"),
    ([{"kind": "noop", "name": "a", "params": [1]}], "workers_at_start[0].params"),
    ([{"kind": "noop", "name": "a"}, {"kind": "echo", "name": "a"}], "workers_at_start[1].name"),
])
def test_a_bad_declaration_is_named(specs: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        HostWorkers(make_engine(), specs)
    assert err.value.field == field


@pytest.mark.parametrize("spec, field", [
    ({"kind": "nope", "name": "a"}, "workers_at_start[1].kind"),
    ({"kind": "steps", "name": "a", "params": {"n": "many"}}, "workers_at_start[1].params.n"),
    ({"kind": "noop", "name": "a", "executor": "dask"}, "workers_at_start[1].executor"),
])
def test_kinds_params_and_executors_are_checked_before_anything_starts(
        spec: dict[str, Any], field: str) -> None:
    workers = HostWorkers(make_engine(), [LONG, spec])
    with pytest.raises(InvalidInput) as err:
        workers.check()
    assert err.value.field == field


def live_workers(store: MemoryStore) -> list[Any]:
    return store.list(TaskFilter(states=Category.PENDING.states, key="worker:watcher")).tasks


class Server:
    def __init__(self, store: MemoryStore, clock: FakeClock, name: str) -> None:
        self.engine: Engine = make_engine(store, clock, server_id=name)
        self.engine.start()
        self.scheduler = Scheduler(self.engine, lease_ttl=30, clock=clock, background=False)
        self.workers = HostWorkers(self.engine, [LONG])
        self.workers.follow(self.scheduler)
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        for t in self.engine.live_tasks():
            self.engine.wait(t.id, 10)
        self.engine.stop()


def test_only_the_lease_holder_runs_the_workers_once_and_hands_them_over() -> None:
    clock, store = FakeClock(), MemoryStore()
    clock.now = 1000.0
    a, b = Server(store, clock, "A"), Server(store, clock, "B")
    try:
        # When both servers' loops run (A first): A holds the lease and runs the worker
        for now in (1000.0, 1010.0, 1020.0):
            clock.now = now
            a.scheduler.step()
            b.scheduler.step()
        [task] = live_workers(store)
        assert task.server_id == "A" and task.key == "worker:watcher" and task.retries == 100
        assert [t.id for t in a.workers.tasks()] == [task.id] and b.workers.tasks() == []
        # When A stops: its worker is cancelled (its signal and grace), then B, taking
        # the lease at its next attempt, starts it: never two at once
        a.scheduler.stop()
        assert a.engine.wait(task.id, 10).state is State.CANCELLED
        clock.now = 1030.0
        b.scheduler.step()
        [again] = live_workers(store)
        assert again.id != task.id and again.server_id == "B"
    finally:
        b.stop()
        a.stop()


def test_a_worker_of_a_dead_holder_is_not_doubled() -> None:
    clock, store = FakeClock(), MemoryStore()
    clock.now = 1000.0
    a, b = Server(store, clock, "A"), Server(store, clock, "B")
    try:
        a.scheduler.step()
        [task] = live_workers(store)
        # When A stops renewing (dead) and B takes the lease after it lapses
        clock.now = 1040.0
        b.scheduler.step()
        assert b.scheduler.holding
        # Then B starts no second worker while A's is live in the store (the engine's
        # recovery of a dead server's tasks restarts that one)
        assert [t.id for t in live_workers(store)] == [task.id]
    finally:
        a.workers.stop()
        b.stop()
        a.stop()
