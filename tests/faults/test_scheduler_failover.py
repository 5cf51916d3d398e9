"""Two servers on one SQLite file, the lease holder in another process: ``kill -9`` it
and the other fires within the lease time; no fire time runs twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bgtasks_ext.core.models import Task
from bgtasks_ext.core.schedules import ScheduleSpec
from bgtasks_ext.scheduling.service import Scheduler
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.scheduler_fixtures import make_engine, runs
from tests.core.test_engine import FAST

ROOT = Path(__file__).resolve().parents[2]
TTL = 2.0


def wait_for(what: str, check: Callable[[], list[Task]], timeout: float = 20) -> list[Task]:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return found


def test_kill_9_of_the_holder_hands_firing_over_within_the_lease_time(tmp_path: Path) -> None:
    # Given a server in another process holding the scheduler lease of one SQLite file
    db = str(tmp_path / "tasks.sqlite")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-m", "tests.faults.scheduler_child", db, str(TTL)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert child.stdout is not None
        other = json.loads(child.stdout.readline())["server_id"]
        # and this one on the same file, not holding it
        engine = make_engine(SQLiteStore(db), config=replace(FAST, lease_ttl=TTL))
        engine.start()
        scheduler = Scheduler(engine, lease_ttl=TTL)
        scheduler.start()
        try:
            # When a schedule every 0.2 s is made here: the other server fires it
            s = scheduler.create(ScheduleSpec("noop", every=0.2))
            wait_for("the holder fires", lambda: [t for t in runs(engine, s.id) if t.server_id == other])
            assert not scheduler.holding
            # When the holder is killed with SIGKILL
            os.kill(child.pid, signal.SIGKILL)
            killed_at = time.time()
            child.wait(10)
            # Then this server fires within the lease time
            mine = wait_for("this server fires",
                            lambda: [t for t in runs(engine, s.id) if t.server_id == engine.server_id])
            assert mine[0].scheduled_for is not None and mine[0].scheduled_for <= killed_at + TTL
            print(f"fired here {mine[0].scheduled_for - killed_at:.3f} s after the kill")
            assert scheduler.holding
            time.sleep(0.5)
            scheduler.patch(s.id, {"enabled": False})
            # and no fire time ran twice, across both servers
            due = [t.scheduled_for for t in runs(engine, s.id)]
            assert len(due) == len(set(due)) and len(due) >= 3
        finally:
            scheduler.stop()
            engine.stop()
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
