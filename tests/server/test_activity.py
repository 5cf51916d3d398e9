"""Live tasks count as server activity (``GET /api/status`` ``last_activity``), so JupyterHub's
idle culler does not stop a server whose only work is its tasks. A real server process; the
only requests made while the task runs are to ``/api/status`` (which does not count itself)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.server_process import ServerProcess


def _last_activity(srv: ServerProcess) -> datetime:
    reply = requests.get(srv.url + "api/status", headers=srv.headers, timeout=10)
    reply.raise_for_status()
    return datetime.fromisoformat(reply.json()["last_activity"].replace("Z", "+00:00"))


def _watch_while_a_task_runs(srv: ServerProcess, seconds: float) -> list[datetime]:
    """Start a task of about ``seconds`` and read ``last_activity`` while it runs."""
    srv.call("POST", "tasks", json={"kind": "sleep", "params": {"seconds": seconds},
                                    "executor": "thread"}).raise_for_status()
    seen = [_last_activity(srv)]  # the POST itself was a request: the first value
    deadline = time.monotonic() + seconds - 0.5
    while time.monotonic() < deadline:
        time.sleep(0.25)
        seen.append(_last_activity(srv))
    return seen


@pytest.mark.parametrize("report", [True, False])
def test_a_running_task_keeps_the_server_active(tmp_path: Path, report: bool) -> None:
    # Given a server (reporting activity, or told not to)
    config = {"activity_interval": 0.5, "report_activity": report}
    with ServerProcess(tmp_path, tmp_path / "tasks.sqlite", config=config) as srv:
        # When a task runs for 4 s and nothing but /api/status is asked meanwhile
        seen = _watch_while_a_task_runs(srv, 4.0)
    moved = (seen[-1] - seen[0]).total_seconds()
    if report:
        # Then last_activity moves forward with it
        assert moved >= 2.0, seen
    else:
        # Then, opted out, it stays at the last request
        assert moved == 0, seen
