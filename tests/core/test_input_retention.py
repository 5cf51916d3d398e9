"""How long an ended task's input (what ``%%bgtask`` / ``submit()`` sent, pickled) is
kept: ``EngineConfig.keep_inputs_for`` seconds after it ended, for a retry; never while
the task is live. A fake clock and an executor the test drives by hand make every
moment exact; the store contract of :class:`DropInputs` runs against both stores."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import Task, TaskFilter, TaskSpec
from bgtasks_ext.core.ports import DropInputs, Executor, ExecutorCallbacks, Job, Outcome, OutcomeStatus, PutBlob, PutTask, Store
from bgtasks_ext.core.retry import InputGone
from bgtasks_ext.core.states import State
from bgtasks_ext.kinds import default_registry
from bgtasks_ext.store.memory import MemoryStore
from bgtasks_ext.store.sqlite import SQLiteStore

from .test_store import ended, make

T0 = 1_800_000_000.0


class Clock:
    """Wall time that moves only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class HandExecutor(Executor):
    """Runs nothing: the test claims and ends each job itself (a worker, by hand)."""

    name = "process"

    def start(self, callbacks: ExecutorCallbacks) -> None:
        self.jobs: list[Job] = []

    def submit(self, job: Job) -> None:
        self.jobs.append(job)

    def cancel(self, task_id: str, grace: float) -> None:
        pass

    def shutdown(self, grace: float) -> None:
        pass


def engine(store: Store, clock: Clock, keep_inputs_for: float | None) -> Engine:
    eng = Engine(store, {"process": HandExecutor()}, default_registry(),
                 EngineConfig(default_executor="process", keep_inputs_for=keep_inputs_for), clock)
    eng.start()
    return eng


def code_task(eng: Engine, data: bytes = b"pickled inputs", **spec: Any) -> Task:
    return eng.submit(TaskSpec("code", payload=data, **spec))


def run_to(eng: Engine, task: Task, status: OutcomeStatus = OutcomeStatus.FINISHED) -> None:
    """Its worker claims it and reports how it ended."""
    assert eng.claim(task.id)
    eng.done(task.id, Outcome(status))


def at(eng: Engine, clock: Clock, when: float) -> None:
    """Move the clock to ``when`` and let every timer due by then run and its writes commit.
    (The timer thread sleeps on the clock it read; a timer due at 0 wakes it, and one due
    at ``when`` runs after every earlier one.)"""
    clock.now = when
    assert eng._timers is not None
    ran = threading.Event()
    eng._timers.at(0.0, lambda: None)
    eng._timers.at(when, ran.set)
    assert ran.wait(30)
    eng.flush()


def has_input(eng: Engine, task: Task) -> bool:
    return eng.store.get_blob(task.id, "input") is not None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def day(clock: Clock) -> Iterator[Engine]:
    eng = engine(MemoryStore(), clock, 86_400.0)
    yield eng
    eng.stop()


def test_an_ended_tasks_input_is_kept_for_the_retention_then_dropped(day: Engine, clock: Clock) -> None:
    # Given a cell task that failed at T0 (retention: one day)
    task = code_task(day)
    run_to(day, task, OutcomeStatus.FAILED)
    day.flush()
    # When a day less a second has passed / Then its input is still there: it can be retried
    at(day, clock, T0 + 86_399)
    assert has_input(day, task)
    assert day.retry_spec(task.id).payload == b"pickled inputs"
    # When the day is over / Then the input is gone, the task itself is not, and a retry is 410
    at(day, clock, T0 + 86_400)
    assert not has_input(day, task)
    assert day.get(task.id).state is State.FAILED
    with pytest.raises(InputGone):
        day.retry_spec(task.id)


def test_a_live_task_keeps_its_input_however_long_it_runs(day: Engine, clock: Clock) -> None:
    # Given a task that started at T0 and another that ended then
    running, done = code_task(day, b"mine"), code_task(day, b"theirs")
    assert day.claim(running.id)
    run_to(day, done)
    # When two days pass / Then only the ended one's input went; the running one's stays
    at(day, clock, T0 + 2 * 86_400)
    assert has_input(day, running) and not has_input(day, done)
    # And when the running one ends, its own day starts then
    day.done(running.id, Outcome(OutcomeStatus.FINISHED))
    at(day, clock, T0 + 3 * 86_400 - 1)
    assert has_input(day, running)
    at(day, clock, T0 + 3 * 86_400)
    assert not has_input(day, running)


def test_zero_drops_the_input_as_the_task_ends_cancelled_and_retried_ones_included(clock: Clock) -> None:
    eng = engine(MemoryStore(), clock, 0.0)
    try:
        # Given a superseded (cancelled before it ran) task and one with a retry left
        superseded = code_task(eng)
        retried = code_task(eng, retries=1)
        # When the first is cancelled and the second's first attempt fails
        eng.cancel(superseded.id)
        run_to(eng, retried, OutcomeStatus.FAILED)
        eng.flush()
        # Then the cancelled one's input is gone at once; the pending retry keeps its input
        assert not has_input(eng, superseded)
        assert eng.get(retried.id).state is State.PENDING and has_input(eng, retried)
        # And once that retry has run and ended, its input goes too
        at(eng, clock, T0 + 10)
        run_to(eng, retried)
        eng.flush()
        assert eng.get(retried.id).state is State.FINISHED and not has_input(eng, retried)
    finally:
        eng.stop()


def test_none_keeps_the_input_as_long_as_the_task(clock: Clock) -> None:
    eng = engine(MemoryStore(), clock, None)
    try:
        task = code_task(eng)
        run_to(eng, task)
        at(eng, clock, T0 + 365 * 86_400)
        assert has_input(eng, task)
    finally:
        eng.stop()


def _input_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM blobs WHERE name = 'input'").fetchone()[0])


def test_a_restart_drops_the_inputs_whose_timers_the_last_run_took_with_it(tmp_path: Path) -> None:
    # Given a SQLite history where two cell tasks ended at T0 and T0 + 500 under a server that
    # kept inputs forever, and a live one (pending at its stop)
    path = tmp_path / "tasks.sqlite"
    clock = Clock()
    first = engine(SQLiteStore(path), clock, None)
    early, late, live = code_task(first), code_task(first), code_task(first, run_on=T0 + 10**6)
    run_to(first, early)
    clock.now = T0 + 500
    run_to(first, late)
    first.stop()
    assert _input_rows(path) == 3
    # When a server keeping inputs 1000 s starts at T0 + 1200
    clock.now = T0 + 1200
    second = engine(SQLiteStore(path), clock, 1000.0)
    try:
        # Then the input of the task that ended more than 1000 s ago is gone from the file
        assert _input_rows(path) == 2
        assert not has_input(second, early) and has_input(second, late) and has_input(second, live)
        # And the other goes when its retention has passed (by this start's own timer)
        at(second, clock, T0 + 2200)
        assert _input_rows(path) == 1 and has_input(second, live)
        assert second.store.get(late.id) is not None
    finally:
        second.stop()


# -- the store operation, on both stores -------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "t.db")
    s.open()
    yield s
    s.close()


def test_drop_inputs_takes_only_inputs_of_tasks_ended_by_then(store: Store) -> None:
    # Given tasks ended at 100 and 1000, a live one, each with an input and a result
    old, new = ended(finished_at=100.0), ended(State.CANCELLED, finished_at=1000.0)
    live = make(state=State.RUNNING, created_at=1.0)
    other_old = ended(State.FAILED, finished_at=100.0)
    tasks = [old, new, live, other_old]
    store.write([PutTask(t) for t in tasks]
                + [PutBlob(t.id, n, n.encode()) for t in tasks for n in ("input", "result")])
    # When the inputs of one task ended by 500 are dropped, then every such input
    store.write([DropInputs(500.0, old.id)])
    assert store.get_blob(old.id, "input") is None and store.get_blob(other_old.id, "input") == b"input"
    store.write([DropInputs(500.0)])
    # Then only the inputs of tasks ended by then went; results, records and the rest stay
    assert [store.get_blob(t.id, "input") for t in tasks] == [None, b"input", b"input", None]
    assert all(store.get_blob(t.id, "result") == b"result" for t in tasks)
    assert len(store.list(TaskFilter()).tasks) == 4
    # And a live task's input survives any cut-off
    store.write([DropInputs(10.0**12), DropInputs(10.0**12, live.id)])
    assert store.get_blob(live.id, "input") == b"input" and store.get_blob(new.id, "input") is None
