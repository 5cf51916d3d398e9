"""A task that kills the server runs at most its retries + 1 times, never at every start.

A real ``jupyter server`` subprocess runs a ``thread``-executor task that segfaults (the
thread executor runs code in the server's own process). Each start finds the attempt
that took the previous server down and records it interrupted; with retries left it
runs again, once per retry, then stays failed, and the server stays up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from tests.server_process import ServerProcess

CONFIG = {"extra_kinds": ["tests.faults.crash_kinds:segfault"]}


def _server(tmp_path: Path) -> ServerProcess:
    return ServerProcess(tmp_path, tmp_path / "tasks.sqlite", config=CONFIG)


def _task(srv: ServerProcess, task_id: str) -> dict[str, Any]:
    reply = requests.get(srv.api + f"tasks/{task_id}", headers=srv.headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _find(srv: ServerProcess, name: str) -> str:
    """The id of the task named ``name`` (its creation reply may never have come)."""
    tasks = requests.get(srv.api + "tasks", headers=srv.headers, timeout=10).json()["tasks"]
    return str(next(t["id"] for t in tasks if t["name"] == name))


def _wait_down(srv: ServerProcess, timeout: float = 30) -> None:
    assert srv.proc is not None
    try:
        srv.proc.wait(timeout)
    finally:
        srv.stop()


def test_a_task_that_crashes_the_server_is_not_run_again_beyond_its_retries(tmp_path: Path) -> None:
    # Given a server, and a thread-executor task that segfaults, with one retry
    srv = _server(tmp_path).start()
    try:  # (the server may die before it answers: the task starts right after its commit)
        requests.post(srv.api + "tasks", headers=srv.headers, timeout=10,
                      json={"kind": "segfault", "executor": "thread", "retries": 1, "name": "crasher"})
    except requests.ConnectionError:
        pass
    # When it runs, the server dies
    _wait_down(srv)
    # Then a start records that attempt interrupted and runs the retry, which takes
    # that server down while it starts (the test helper then starts another); the start
    # after that runs nothing more: the task is failed and the server lives
    srv = _server(tmp_path).start()
    try:
        task = _task(srv, _find(srv, "crasher"))
        assert task["state"] == "failed", task
        assert task["attempt"] == 2 and task["error"]["reason"] == "interrupted"
        time.sleep(1.0)
        assert srv.proc is not None and srv.proc.poll() is None
        assert _task(srv, task["id"])["state"] == "failed"
        # (three servers in all: the first run, the one retry, this one)
        assert srv.log_path.read_text().count("bgtasks_ext | extension was successfully linked") == 3
    finally:
        srv.stop()
