"""The extension's module loggers write through the server's log: a real ``jupyter
server`` process, its stderr read back (ServerProcess writes it to ``server.log``)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.server_process import ServerProcess

# The server's own format: "[I 2026-11-30 11:00:54.300 ServerApp] message"
SERVER_LINE = r"\[{level} \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} {name}\] {message}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("logging")
    with ServerProcess(root, root / "tasks.sqlite", config={"kernel_watch_interval": 0.2}) as srv:
        yield srv


def _wait_line(srv: ServerProcess, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in srv.log_path.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never logged:\n{srv.log_path.read_text()[-3000:]}")


def test_an_info_line_of_a_module_logger_is_in_the_server_log(server: ServerProcess) -> None:
    # Given a kernel-scope task of a kernel this server runs
    kernel = server.call("POST", "../../api/kernels", json={}).json()["id"]
    task = server.call("POST", "tasks", json={
        "kind": "sleep", "params": {"seconds": 60}, "scope": "kernel",
        "origin": {"kernel_id": kernel}}).json()
    # When the kernel shuts down (the kernel watcher, bgtasks_ext.server.kernels, logs it)
    assert server.call("DELETE", f"../../api/kernels/{kernel}").status_code == 204
    assert server.wait_end(task["id"])["state"] == "cancelled"
    # Then its info line is in the server's log, formatted as the server's own
    line = _wait_line(server, f"bgtasks: kernel {kernel}")
    assert re.fullmatch(SERVER_LINE.format(level="I", name=r"bgtasks_ext\.server\.kernels",
                                           message=".*ended 1 task.*"), line), line


def test_a_warning_of_a_module_logger_is_formatted_like_the_server(
        server: ServerProcess, tmp_path: Path) -> None:
    # Given an interpreter that cannot run a worker (it exits at once)
    fake = tmp_path / "not-python"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    # When a task asks for it (the process executor's supervisor warns)
    task = server.call("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0},
                                                "python": str(fake)}).json()
    # Then the warning is a server log line, not bare text on stderr
    line = _wait_line(server, f"a worker for {fake}")
    assert re.fullmatch(SERVER_LINE.format(level="W", name=r"bgtasks_ext\.executors\.supervisor",
                                           message=".*"), line), line
    server.call("POST", f"tasks/{task['id']}/cancel")
