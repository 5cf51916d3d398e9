"""Cancel, worker death and a task's end take the task's whole process tree with them;
a task leaves nothing behind in its worker; a signal to the server's process group is
the server's to handle. Real workers (the process executor), real child processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from bgtasks_ext.executors.process import ProcessExecutor
from bgtasks_ext.executors.proctree import running
from tests.core.test_process_executor import Recorder, job, wait_until
from tests.server_process import ServerProcess


def _tree(pidfile: Path) -> list[int]:
    assert wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 5, 20), \
        "the task did not start its five processes"
    pids = [int(p) for p in pidfile.read_text().split()]
    assert all(running(p) for p in pids)
    return pids


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[ProcessExecutor, Recorder]]]:
    made: list[ProcessExecutor] = []

    def factory(**kw: Any) -> tuple[ProcessExecutor, Recorder]:
        ex = ProcessExecutor(workers=1, **kw)
        rec = Recorder()
        ex.start(rec)
        made.append(ex)
        assert wait_until(lambda: len(ex.pids(ready=True)) == 1, 20)
        return ex, rec

    yield factory
    for ex in made:
        ex.shutdown(2)


def test_cancel_ends_the_whole_tree(make: Any, tmp_path: Path) -> None:
    # Given a task that started a child, a shell with two children and a daemon
    ex, rec = make()
    ex.submit(job("t1", "spawn_tree", pidfile=str(tmp_path / "pids")))
    pids = _tree(tmp_path / "pids")
    # When it is cancelled (it ignores the flag: SIGTERM ends it)
    ex.cancel("t1", 0.3)
    assert rec.wait_done("t1").status == "cancelled"
    # Then none of the five lives on
    assert wait_until(lambda: not any(running(p) for p in pids), 10), [p for p in pids if running(p)]


def test_a_killed_worker_takes_the_tree_with_it(make: Any, tmp_path: Path) -> None:
    ex, rec = make()
    ex.submit(job("t2", "spawn_tree", pidfile=str(tmp_path / "pids")))
    pids = _tree(tmp_path / "pids")
    # When the worker is killed from outside (the OOM killer, a user)
    os.kill(ex.pids()[0], signal.SIGKILL)
    out = rec.wait_done("t2")
    assert out.error is not None and out.error.reason == "worker_died"
    # Then what its task started is ended too
    assert wait_until(lambda: not any(running(p) for p in pids), 10), [p for p in pids if running(p)]


def test_what_a_finished_task_left_running_is_ended_and_logged(make: Any, tmp_path: Path) -> None:
    ex, rec = make()
    ex.submit(job("t3", "spawn_tree", pidfile=str(tmp_path / "pids"), then="return"))
    out = rec.wait_done("t3")
    assert out.status == "finished"
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert wait_until(lambda: not any(running(p) for p in pids), 10)
    assert "ended 5 process(es) the task left running" in "".join(rec.logs.get("t3", []))
    # And the worker runs the next task as ever
    ex.submit(job("t4", "add", a=1, b=1))
    assert rec.wait_done("t4").status == "finished"


def test_a_task_leaves_nothing_behind_in_its_worker(make: Any) -> None:
    # Given one worker, and tasks that change its environment, directory, sys.path, limits
    ex, rec = make()
    ex.submit(job("m1", "meddle"))
    assert rec.wait_done("m1").status == "finished"
    ex.submit(job("m2", "meddle"))
    second = rec.wait_done("m2")
    # Then the next task on that same worker sees none of it
    import cloudpickle

    first_seen = cloudpickle.loads(rec.outcomes["m1"].result)  # type: ignore[arg-type]
    seen = cloudpickle.loads(second.result)  # type: ignore[arg-type]
    assert seen["pid"] == first_seen["pid"]
    assert seen["env"] is None and seen["cwd"] == first_seen["cwd"] and not seen["path"]
    assert seen["nofile"] == first_seen["nofile"]


def test_max_tasks_per_worker_replaces_the_worker(make: Any) -> None:
    import cloudpickle

    ex, rec = make(max_tasks_per_worker=2)
    pids = []
    for i in range(3):
        ex.submit(job(f"w{i}", "meddle"))
        pids.append(cloudpickle.loads(rec.wait_done(f"w{i}").result)["pid"])  # type: ignore[arg-type]
    assert pids[0] == pids[1] != pids[2]


def test_task_memory_limit_fails_the_task_clearly(make: Any) -> None:
    ex, rec = make(task_memory_limit=100 * 2**20)
    ex.submit(job("big", "hog", megabytes=400))
    out = rec.wait_done("big")
    assert out.status == "failed" and out.error is not None
    assert out.error.reason == "memory" and "task_memory_limit" in out.error.message
    # And the worker, its limit restored, runs what fits
    ex.submit(job("small", "hog", megabytes=20))
    assert rec.wait_done("small").status == "finished"


def test_sigterm_to_the_servers_group_interrupts_and_requeues(tmp_path: Path) -> None:
    # Given a server running a task that has a retry left (on a worker, in its group's care)
    srv = ServerProcess(tmp_path, tmp_path / "tasks.sqlite").start()
    reply = requests.post(srv.api + "tasks", headers=srv.headers, timeout=10,
                          json={"kind": "sleep", "params": {"seconds": 30}, "retries": 1})
    task_id = reply.json()["id"]
    assert wait_until(lambda: requests.get(srv.api + f"tasks/{task_id}", headers=srv.headers,
                                           timeout=10).json()["state"] == "running", 20)
    # When the whole process group gets SIGTERM (systemd's stop, a terminal closing)
    os.killpg(srv.pid, signal.SIGTERM)
    assert srv.proc is not None
    srv.proc.wait(30)
    srv.stop()
    # Then the task was not taken for a user's cancel: the next start runs it again
    srv = ServerProcess(tmp_path, tmp_path / "tasks.sqlite").start()
    try:
        task = requests.get(srv.api + f"tasks/{task_id}", headers=srv.headers, timeout=10).json()
        assert task["state"] in ("pending", "running"), task
        assert task["attempt"] == 2 and task["error"]["reason"] == "interrupted"
    finally:
        srv.stop()
