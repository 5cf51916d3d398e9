"""Restart safety end to end: ``kill -9`` a real Jupyter server mid-task, start a new
one on the same store, and read the outcome over REST."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from tests.server_process import ServerProcess

DELAY = 6.0
"""Seconds ahead the delayed task is due: after the kill, before or after the restart."""


def _call(srv: ServerProcess, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, srv.api + path, headers=srv.headers, timeout=10, **kw)


def _wait(srv: ServerProcess, task_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = _call(srv, "GET", f"tasks/{task_id}").json()
        if task["state"] in states:
            return task
        assert time.monotonic() < deadline, f"never {states}: {task}"
        time.sleep(0.05)


def _poll_while_starting(srv: ServerProcess, task_id: str, codes: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        if srv.port:
            try:
                codes.append(_call(srv, "GET", f"tasks/{task_id}").status_code)
            except requests.ConnectionError:
                pass
        time.sleep(0.005)


def test_kill9_then_restart_over_rest(tmp_path: Path) -> None:
    store = tmp_path / "store" / "tasks.sqlite"
    first = ServerProcess(tmp_path / "first", store, config={"default_executor": "process"})
    try:
        # Given a server with history, a running process task and a delayed one
        first.start()
        done = [_call(first, "POST", "tasks", json={"kind": "count", "params": {"times": 1, "interval": 0}})
                .json()["id"] for _ in range(3)]
        for task_id in done:
            _wait(first, task_id, "finished")
        running = _call(first, "POST", "tasks",
                        json={"kind": "count", "params": {"times": 100, "interval": 0.1}}).json()
        due = datetime.now(timezone.utc) + timedelta(seconds=DELAY)
        delayed = _call(first, "POST", "tasks", json={"kind": "count", "params": {"times": 1, "interval": 0},
                                                      "run_on": due.isoformat()}).json()
        _wait(first, running["id"], "running")
        # (each worker has a session of its own, so a signal to the server's group is
        # the server's to handle; they are its children)
        from bgtasks_ext.executors.proctree import descendants
        from bgtasks_ext.executors.proctree import running as is_running

        workers = set(descendants(first.pid))
        assert workers, "the process executor runs the task in a worker process"

        # When the server alone is killed (its workers are not signalled)
        first.kill9()
        # Then its workers notice the broken pipe and exit by themselves
        deadline = time.monotonic() + 10
        while (left := {p for p in workers if is_running(p)}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"worker processes {left} outlived their server"
    finally:
        first.stop()  # whatever is left of its group

    # When a new server starts on the same store (polled all the while: 503, never 500)
    second = ServerProcess(tmp_path / "second", store, config={"default_executor": "process"})
    codes: list[int] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll_while_starting, args=(second, running["id"], codes, stop))
    poller.start()
    try:
        second.start()
        stop.set()
        poller.join()
        assert codes and set(codes) <= {200, 503}, sorted(set(codes))

        # Then the task that was running is failed, interrupted
        victim = _wait(second, running["id"], "failed", timeout=5)
        assert victim["error"]["reason"] == "interrupted", victim
        assert victim["category"] == "failed"
        # And the delayed task runs at its time, not before
        ran = _wait(second, delayed["id"], "finished", timeout=DELAY + 20)
        assert ran["result_preview"] == 1
        assert datetime.fromisoformat(ran["started_at"].replace("Z", "+00:00")) >= due
        # And history is intact: the earlier finished tasks are still listed
        listed = _call(second, "GET", "tasks", params={"category": "finished"}).json()["tasks"]
        assert set(done) | {delayed["id"]} == {t["id"] for t in listed}
        for task_id in done:
            assert _call(second, "GET", f"tasks/{task_id}/result").json()["preview"] == 1
    finally:
        stop.set()
        second.stop()
