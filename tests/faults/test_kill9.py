"""Recovery after a real ``kill -9`` of a process running the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import TaskFilter
from bgtasks_ext.core.states import State
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.test_engine import registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_kill9_then_restart(tmp_path: Path, executor: str) -> None:
    # Given a process running the engine with a running task, a retried one, a
    # delayed one, and submits being acknowledged as fast as it can
    db = str(tmp_path / "tasks.sqlite")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.engine_child", db, executor, str(tmp_path / "marker")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    assert child.stdout is not None
    ids = json.loads(child.stdout.readline())
    assert json.loads(child.stdout.readline()) == {"state": "running"}
    acked: list[str] = []
    for line in child.stdout:
        acked.append(json.loads(line)["acked"])
        if len(acked) == 50:
            break
    # When it is killed with SIGKILL right after an acknowledged submit
    from bgtasks_ext.executors.proctree import descendants

    below = descendants(child.pid)  # its workers (each in a session of its own)
    assert executor == "thread" or below
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    # (its worker processes notice and exit: nothing of its process group, and none
    # of its workers, survives)
    _assert_group_gone(child.pid)
    _assert_gone(below)

    # Then a new engine on the same file recovers
    if executor == "process":
        from bgtasks_ext.executors.process import ProcessExecutor

        execs: dict = {"process": ProcessExecutor(workers=2)}
    else:
        execs = {"thread": ThreadExecutor(4)}
    engine = Engine(SQLiteStore(db), execs, registry(), EngineConfig(default_executor=executor))
    engine.start()
    try:
        victim = engine.get(ids["running"])
        assert victim.state is State.FAILED
        assert victim.error is not None and victim.error.reason == "interrupted"
        # the task with a retry left runs again, as its second attempt
        retried = engine.wait(ids["retried"], 20)
        assert (retried.state, retried.attempt, retried.result_preview) == (State.FINISHED, 2, "second run")
        # the delayed task runs at its time
        delayed = engine.wait(ids["delayed"], 20)
        assert delayed.state is State.FINISHED and delayed.result_preview == "late"
        assert delayed.started_at is not None and delayed.run_on is not None
        assert delayed.started_at >= delayed.run_on
        # and every acknowledged submit survived: it ran, or, on the thread executor
        # (code in the server's own process), it had begun when the process died and
        # is recorded interrupted rather than run again (a task that crashed the server
        # must not crash it again at every start)
        for task_id in acked:
            done = engine.wait(task_id, 20)
            interrupted = done.error is not None and done.error.reason == "interrupted"
            assert done.state is State.FINISHED or (
                executor == "thread" and done.state is State.FAILED and interrupted), done
        assert engine.store.count(TaskFilter()) >= 3 + len(acked)
    finally:
        engine.stop()


def _assert_group_gone(pgid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"processes of group {pgid} outlived the kill")


def _assert_gone(pids: list[int], timeout: float = 10) -> None:
    from bgtasks_ext.executors.proctree import running

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(running(p) for p in pids):
            return
        time.sleep(0.05)
    pytest.fail(f"processes {[p for p in pids if running(p)]} outlived the kill")
