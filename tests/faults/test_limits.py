"""Limits, seen from outside: a result too big to keep, against a real server and its
real workers. The task fails with a reason that says so, nothing hangs, the server lives.
"""

from __future__ import annotations

import base64
import time
from typing import Any, Iterator

import cloudpickle
import pytest

from bgtasks_ext.kinds.code import CodeJob
from tests.server_process import ServerProcess

LIMIT = 1 << 20


def _run(srv: ServerProcess, fn: Any, *args: Any, timeout: float = 60) -> dict[str, Any]:
    payload = base64.b64encode(cloudpickle.dumps(CodeJob(mode="call", fn=fn, args=args))).decode()
    reply = srv.call("POST", "tasks", json={"kind": "code", "payload": payload})
    assert reply.status_code == 201, reply.text
    return srv.wait_end(reply.json()["id"], timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("limits")
    with ServerProcess(root, root / "tasks.sqlite", config={"max_result_bytes": LIMIT}) as srv:
        yield srv


def test_a_result_above_max_result_bytes_fails_the_task_and_nothing_hangs(server: ServerProcess) -> None:
    # Given c.BgTasks.max_result_bytes = 1 MiB
    # When a task returns 8 MiB
    started = time.monotonic()
    task = _run(server, bytes, 8 * LIMIT)
    # Then it fails, saying why and which limit, at once
    assert task["state"] == "failed", task
    assert task["error"]["reason"] == "result_too_large"
    assert "max_result_bytes" in task["error"]["message"]
    assert time.monotonic() - started < 30
    # And its result is refused (409), its log answers, the listing holds it
    assert server.call("GET", f"tasks/{task['id']}/result").status_code == 409
    assert server.call("GET", f"tasks/{task['id']}/log").status_code == 200
    assert task["id"] in [t["id"] for t in server.call("GET", "tasks").json()["tasks"]]
    # And the server runs the next task as ever
    assert _run(server, bytes, LIMIT // 2)["state"] == "finished"
