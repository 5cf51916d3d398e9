"""A declared host worker on a real engine: its task runs in a worker process, and a
``kill -9`` of that process restarts it (the engine's retry back-off), its ``attempt``
counting the restarts."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

from bgtasks_ext.core.states import State
from bgtasks_ext.executors.process import ProcessExecutor
from bgtasks_ext.scheduling.service import Scheduler
from bgtasks_ext.scheduling.workers import HostWorkers
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.scheduler_fixtures import make_engine
from tests.core.test_engine import FAST

from . import host_worker_kinds


def pids(marker: Path, n: int, timeout: float = 30) -> list[int]:
    """The first ``n`` process ids the worker noted (one per start)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [int(x) for x in marker.read_text().split()] if marker.exists() else []
        if len(found) >= n:
            return found
        assert time.monotonic() < deadline, f"the worker started {len(found)} times, not {n}"
        time.sleep(0.02)


def test_a_host_worker_starts_with_the_lease_and_comes_back_after_kill_9(tmp_path: Path) -> None:
    # Given a server (engine + scheduler) with one declared worker
    engine = make_engine(SQLiteStore(str(tmp_path / "tasks.sqlite")),
                         config=replace(FAST, default_executor="process", retry_backoff=0.2),
                         executors={"process": ProcessExecutor(workers=2)})
    engine.kinds.register(host_worker_kinds.host_loop)
    marker = tmp_path / "pids"
    workers = HostWorkers(engine, [{"kind": "host_loop", "name": "watcher",
                                    "params": {"marker": str(marker)}}])
    workers.check()
    engine.start()
    scheduler = Scheduler(engine)
    workers.follow(scheduler)
    try:
        # When the server starts: the lease holder starts the worker, in a worker process
        scheduler.start()
        first = pids(marker, 1)[0]
        [task] = workers.tasks()
        assert task.key == "worker:watcher" and task.name == "watcher" and first != os.getpid()
        # When that process is killed with SIGKILL
        os.kill(first, signal.SIGKILL)
        # Then the engine restarts the worker in a new process, as the task's next attempt
        second = pids(marker, 2)[1]
        assert second != first
        deadline = time.monotonic() + 10
        while (now := engine.get(task.id)).state is not State.RUNNING or now.attempt != 2:
            assert time.monotonic() < deadline, now
            time.sleep(0.02)
        assert now.error is not None and now.error.reason == "worker_died"
        assert [t.id for t in workers.tasks()] == [task.id]  # still one
        # When the server stops, the worker gets its cancel signal and ends cancelled
        scheduler.stop()
        assert engine.wait(task.id, 20).state is State.CANCELLED
    finally:
        scheduler.stop()
        engine.stop()
