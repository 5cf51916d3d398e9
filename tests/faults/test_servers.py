"""Two servers on one store, for real: engines in separate processes on one SQLite file.

A second server's start must leave the first one's running and pending tasks alone
(before issue 12 it interrupted and stole them); a ``kill -9`` of the first makes the
second adopt its tasks within the lease time; a schedule's fire time created by both
at once runs once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import TaskFilter, TaskSpec
from bgtasks_ext.core.states import State
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.test_engine import registry

ROOT = Path(__file__).resolve().parents[2]
LEASE = 3.0


class Child:
    """The first server: tests.faults.server_child in a process of its own."""

    def __init__(self, db: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.server_child", str(db), str(LEASE)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)
        hello = self.read()
        self.server_id: str = hello["server_id"]

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the child server died"
        return dict(json.loads(line))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def submit(self, **spec: Any) -> str:
        return str(self.ask("submit " + json.dumps(spec))["id"])

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "tasks.sqlite"


@pytest.fixture
def first(db: Path) -> Iterator[Child]:
    child = Child(db)
    yield child
    child.close()


@pytest.fixture
def second(db: Path, first: Child) -> Iterator[Engine]:
    engine = Engine(SQLiteStore(db), {"thread": ThreadExecutor(4)}, registry(),
                    EngineConfig(default_executor="thread", lease_ttl=LEASE))
    yield engine
    engine.stop()


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_second_servers_start_leaves_the_first_ones_tasks_to_it(
        first: Child, second: Engine, tmp_path: Path) -> None:
    # Given the first server running a task, with another pending (due in a moment)
    gate = tmp_path / "gate"
    running = first.submit(kind="until_file", params={"path": str(gate)})
    pending = first.submit(kind="echo", params={"value": "later"}, run_in=1.5)
    _until(lambda: first.ask(f"get {running}")["state"] == "running", 10, "never ran")
    # When a second server starts on the same file (and beats on)
    second.start()
    second.beat()
    # Then both tasks are still the first server's, untouched
    assert second.live_tasks() == []
    stored = second.store.get(running)
    assert stored is not None and stored.state is State.RUNNING
    assert stored.server_id == first.server_id
    # And they finish on the first server
    gate.touch()
    _until(lambda: first.ask(f"get {running}")["state"] == "finished", 10, "never finished")
    _until(lambda: first.ask(f"get {pending}")["state"] == "finished", 10, "pending never ran")
    for task_id in (running, pending):
        done = second.store.get(task_id)
        assert done is not None and done.state is State.FINISHED
        assert done.server_id == first.server_id
    assert second.store.get(pending).result_preview == "later"  # type: ignore[union-attr]


def test_after_kill9_of_the_first_the_second_adopts_its_tasks_within_the_lease(
        first: Child, second: Engine, tmp_path: Path) -> None:
    # Given the second server running, and the first running a task without retries,
    # one with a retry, and holding one pending
    second.start()
    lost = first.submit(kind="until_file", params={"path": str(tmp_path / "never")})
    retried = first.submit(kind="once_slow", params={"marker": str(tmp_path / "marker")}, retries=1)
    pending = first.submit(kind="echo", params={"value": "adopted"}, run_in=3600)
    _until(lambda: first.ask(f"get {retried}")["state"] == "running", 10, "never ran")
    _until(lambda: first.ask(f"get {lost}")["state"] == "running", 10, "never ran")
    assert second.live_tasks() == []
    # When the first is killed with SIGKILL
    first.kill9()
    killed_at = time.monotonic()
    # Then within the lease time the second has adopted all three
    _until(lambda: {t.id for t in second.live_tasks()} >= {pending}, LEASE + 1, "not adopted")
    assert time.monotonic() - killed_at < LEASE
    # the running one without retries is failed, interrupted; the retried one runs again
    # here, as its second attempt; the pending one is the second's, waiting for its time
    done = second.wait(lost, 10)
    assert done.state is State.FAILED and done.error is not None
    assert done.error.reason == "interrupted" and done.server_id == second.server_id
    again = second.wait(retried, 10)
    assert (again.state, again.attempt, again.result_preview) == (State.FINISHED, 2, "second run")
    adopted = second.get(pending)
    assert adopted.state is State.PENDING and adopted.server_id == second.server_id


def test_both_servers_creating_the_same_fire_times_make_one_run_each(
        first: Child, second: Engine, tmp_path: Path) -> None:
    # Given two servers, both about to create runs of schedule s for fire times 0..199
    second.start()
    barrier = tmp_path / "go"
    assert first.proc.stdin is not None
    first.proc.stdin.write(f"runs s 0 200 {barrier}\n")
    first.proc.stdin.flush()
    # When they go at once
    barrier.touch()
    mine = [float(t) for t in range(200) if second.create_run(TaskSpec("noop"), "s", float(t))]
    theirs = first.read()["won"]
    # Then every fire time got exactly one run, made by one or the other
    assert sorted(mine + theirs) == [float(t) for t in range(200)]
    runs = second.store.list(TaskFilter(schedule_id="s"), 1000).tasks
    assert sorted(t.scheduled_for for t in runs) == [float(t) for t in range(200)]  # type: ignore[type-var]
