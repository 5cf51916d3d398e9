"""Several engines (servers) on one store, in one process, on a fake clock: a start
leaves another live server's tasks alone; a server that is gone has its tasks adopted
at a heartbeat once its lease lapsed; a schedule's fire time runs once. Heartbeats are
asked for (``Engine.beat``), never waited for. The same with real processes on a real
SQLite file: tests/faults/test_servers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import Task, TaskEvent, TaskSpec, new_id
from bgtasks_ext.core.ports import PutTask, server_lease
from bgtasks_ext.core.states import State
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.memory import MemoryStore

from .test_context import FakeClock
from .test_engine import registry

TTL = 30.0
T0 = 1_800_000_000.0


class SharedStore(MemoryStore):
    """One memory store for several engines: an engine's stop must not wipe it."""

    def close(self) -> None:
        pass


def config(server_id: str | None = None) -> EngineConfig:
    return EngineConfig(default_executor="thread", cancel_grace=0.2, retry_backoff=0.05,
                        server_id=server_id or new_id(), lease_ttl=TTL)


@pytest.fixture
def clock() -> FakeClock:
    c = FakeClock()
    c.now = T0
    return c


@pytest.fixture
def store() -> SharedStore:
    s = SharedStore()
    s.open()
    return s


@pytest.fixture
def engines(store: SharedStore, clock: FakeClock) -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.stop()


def start(engines: list[Engine], store: SharedStore, clock: FakeClock, **kw: str) -> Engine:
    e = Engine(store, {"thread": ThreadExecutor(4)}, registry(), config(**kw), clock)
    e.start()
    engines.append(e)
    return e


def until(path: Path, name: str = "gate") -> TaskSpec:
    return TaskSpec("until_file", {"path": str(path / name)})


def wait_running(e: Engine, task_id: str) -> None:
    import time

    for _ in range(2000):
        if e.get(task_id).state is State.RUNNING:
            return
        time.sleep(0.005)
    raise AssertionError(f"{task_id} never ran")


def test_a_second_server_start_leaves_the_first_ones_tasks_alone(
        engines: list[Engine], store: SharedStore, clock: FakeClock, tmp_path: Path) -> None:
    # Given server a with a running task and a pending one (due later)
    a = start(engines, store, clock)
    running = a.submit(until(tmp_path))
    pending = a.submit(TaskSpec("echo", {"value": 1}, run_on=T0 + 5))
    wait_running(a, running.id)
    assert {store.get(t.id).server_id for t in (running, pending)} == {a.server_id}
    # When server b starts on the same store, and beats
    b = start(engines, store, clock)
    b.beat()
    # Then neither task changed: still a's, running and pending, and b holds none
    assert store.get(running.id).state is State.RUNNING
    assert store.get(pending.id).state is State.PENDING
    assert {store.get(t.id).server_id for t in (running, pending)} == {a.server_id}
    assert b.live_tasks() == []
    # And the running one finishes on a
    (tmp_path / "gate").touch()
    done = a.wait(running.id, 10)
    assert done.state is State.FINISHED and done.server_id == a.server_id


def _dead_server(store: SharedStore, tmp_path: Path) -> tuple[str, dict[str, Task]]:
    """Records a server left when it died at T0: a running task (one retry left), a
    running one without retries, a pending one, a cancelling one."""
    dead = "dead-server"
    assert store.lease(server_lease(dead), dead, TTL, T0)

    def rec(name: str, state: State, **kw: object) -> Task:
        base: dict[str, object] = dict(id=new_id(), kind="echo", name=name, params={"value": name},
                                       state=state, created_at=T0, executor="thread", server_id=dead)
        base.update(kw)
        return Task(**base)  # type: ignore[arg-type]

    tasks = {
        "retried": rec("retried", State.RUNNING, started_at=T0, retries=1),
        "lost": rec("lost", State.RUNNING, started_at=T0),
        "pending": rec("pending", State.PENDING),
        "cancelling": rec("cancelling", State.CANCELLING, started_at=T0, cancel_reason="cancelled"),
    }
    store.write([PutTask(t) for t in tasks.values()])
    return dead, tasks


def test_a_dead_servers_tasks_are_adopted_once_its_lease_lapses(
        engines: list[Engine], store: SharedStore, clock: FakeClock, tmp_path: Path) -> None:
    # Given a server b running, and the records of a server that died at T0
    b = start(engines, store, clock)
    events: list[TaskEvent] = []
    b.subscribe(events.append)
    dead, tasks = _dead_server(store, tmp_path)
    # When b beats while the dead server's lease is still current
    clock.now = T0 + TTL - 1
    b.beat()
    # Then nothing of it is touched
    assert all(store.get(t.id) == t for t in tasks.values())
    # When b beats after the lease lapsed
    clock.now = T0 + TTL + 1
    b.beat()
    # Then its running tasks end as interrupted (the one with a retry runs again, here),
    # its pending one runs here, its cancel under way completes
    lost = b.wait(tasks["lost"].id, 10)
    assert lost.state is State.FAILED and lost.error is not None
    assert lost.error.reason == "interrupted" and lost.server_id == b.server_id
    retried = b.wait(tasks["retried"].id, 10)
    assert (retried.state, retried.attempt, retried.result_preview) == (State.FINISHED, 2, "retried")
    assert b.wait(tasks["pending"].id, 10).result_preview == "pending"
    assert b.wait(tasks["cancelling"].id, 10).state is State.CANCELLED
    # And b's listeners heard of each of them
    assert {e.task.id for e in events} == {t.id for t in tasks.values()}


def test_a_late_beat_adopts_nothing_so_a_server_that_slept_too_keeps_its_tasks(
        engines: list[Engine], store: SharedStore, clock: FakeClock, tmp_path: Path) -> None:
    # Given b running, and another server's task whose lease lapsed while b slept too
    b = start(engines, store, clock)
    dead, tasks = _dead_server(store, tmp_path)
    # When b's first beat after that sleep comes later than its own lease
    clock.now = T0 + TTL + 1
    b.beat()
    # Then it only renewed: the other server gets a beat to renew its own lease
    assert all(store.get(t.id) == t for t in tasks.values())
    assert store.lease_holder(server_lease(b.server_id), clock.now) == b.server_id
    assert store.lease(server_lease(dead), dead, TTL, clock.now)
    b.beat()
    assert all(store.get(t.id) == t for t in tasks.values())


def test_a_stopped_servers_pending_tasks_are_adopted_at_once(
        engines: list[Engine], store: SharedStore, clock: FakeClock) -> None:
    # Given server a with a task due later, and server b
    a = start(engines, store, clock)
    b = start(engines, store, clock)
    task = a.submit(TaskSpec("echo", {"value": "later"}, run_on=T0 + 0.05))
    # When a stops (its lease released), and b beats at once
    a.stop()
    engines.remove(a)
    b.beat()
    # Then b runs it
    clock.now = T0 + 1
    done = b.wait(task.id, 10)
    assert done.state is State.FINISHED and done.server_id == b.server_id


def test_create_run_makes_one_task_per_fire_time_across_servers(
        engines: list[Engine], store: SharedStore, clock: FakeClock) -> None:
    # Given two servers and a listener on each
    a, b = start(engines, store, clock), start(engines, store, clock)
    heard: list[TaskEvent] = []
    a.subscribe(heard.append)
    b.subscribe(heard.append)
    spec = TaskSpec("echo", {"value": "run"})
    # When both create the run of schedule s for one fire time, and a for another
    first = a.create_run(spec, "s", T0 + 60)
    second = b.create_run(spec, "s", T0 + 60)
    again = a.create_run(spec, "s", T0 + 60)
    other = a.create_run(spec, "s", T0 + 120)
    # Then the first made it, the others got None; it runs like any task
    assert first is not None and second is None and again is None and other is not None
    assert (first.schedule_id, first.scheduled_for, first.server_id) == ("s", T0 + 60, a.server_id)
    assert a.wait(first.id, 10).result_preview == "run"
    assert [e.change for e in heard if e.task.id == first.id][0] == "created"
    assert {e.task.id for e in heard} == {first.id, other.id}


def test_lease_and_release_are_the_stores_with_this_server_as_holder(
        engines: list[Engine], store: SharedStore, clock: FakeClock) -> None:
    a, b = start(engines, store, clock), start(engines, store, clock)
    assert a.lease("scheduler", 10) and not b.lease("scheduler", 10)
    assert store.lease_holder("scheduler", clock.now) == a.server_id
    b.release("scheduler")  # not b's: nothing happens
    assert not b.lease("scheduler", 10)
    a.release("scheduler")
    assert b.lease("scheduler", 10)


def test_a_singleton_adopted_while_this_server_runs_its_own_copy_is_dropped(
        engines: list[Engine], store: SharedStore, clock: FakeClock, tmp_path: Path) -> None:
    # Given b running a keyed (singleton) task, and a dead server's pending task of that key
    b = start(engines, store, clock)
    mine = b.submit(TaskSpec("until_file", {"path": str(tmp_path / "gate")}, key="worker:w"))
    orphan = Task(id=new_id(), kind="echo", name="w", params={}, state=State.PENDING,
                  created_at=T0, executor="thread", key="worker:w", server_id="gone")
    store.write([PutTask(orphan)])
    # When b adopts it
    b.beat()
    # Then the copy here stays, the adopted one fails saying why
    dropped = b.wait(orphan.id, 10)
    assert dropped.state is State.FAILED and dropped.error is not None
    assert dropped.error.reason == "duplicate_key"
    assert b.get(mine.id).state in (State.PENDING, State.RUNNING)
    (tmp_path / "gate").touch()
    assert b.wait(mine.id, 10).state is State.FINISHED


def test_a_cancel_of_another_live_servers_task_says_where_it_runs(
        engines: list[Engine], store: SharedStore, clock: FakeClock, tmp_path: Path) -> None:
    from bgtasks_ext.core.errors import Conflict

    # Given a task running on server a, and server b on the same store
    a = start(engines, store, clock)
    running = a.submit(until(tmp_path))
    wait_running(a, running.id)
    b = start(engines, store, clock)
    # When it is cancelled through b / Then b refuses, naming the server, and a runs on
    with pytest.raises(Conflict, match=f"on another server \\({a.server_id}\\).*cancel it there"):
        b.cancel(running.id)
    assert a.get(running.id).state is State.RUNNING
    (tmp_path / "gate").touch()
    assert a.wait(running.id, 10).state is State.FINISHED
