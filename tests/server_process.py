"""A real ``jupyter server`` subprocess with bgtasks, for tests and benchmarks that need
one outside pytest-jupyter's event loop (synchronous clients, ``kill -9``, restarts).

Each server gets its own temp ``JUPYTER_*`` dirs, a free port on 127.0.0.1 (no silent
port retry), a known token, and its own process group, so it is stopped by id and
never by name.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

API = "bgtasks/api/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM ``proc`` (started in a session of its own), wait up to ``timeout`` s, then
    SIGKILL whatever of its process group is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(5)


class ServerProcess:
    """``jupyter server`` on ``store`` (an SQLite file), started by :meth:`start`."""

    def __init__(self, root: Path, store: Path, *, token: str | None = None,
                 config: dict[str, Any] | None = None, terminals: bool = False,
                 server_config: dict[str, Any] | None = None) -> None:
        self.root = root
        self.server_config = server_config or {}
        """More ``ServerApp`` traits (e.g. ``max_body_size``)."""
        self.store = store
        self.token = token or secrets.token_hex(16)
        self.config = config or {}
        self.terminals = terminals
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = root / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api(self) -> str:
        return self.url + API

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "BGTASKS"))}
        for name in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
            path = self.root / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        return env

    def _write_config(self) -> None:
        bgtasks = {"store_path": str(self.store), "workers": 1, **self.config}
        # Only our extension: the others (lab, lsp, terminals) cost start-up time.
        config = {"ServerApp": {"jpserver_extensions": {
            "bgtasks_ext": True, "jupyterlab": False, "jupyter_lsp": False,
            "jupyter_server_terminals": self.terminals, "notebook_shim": False},
            **self.server_config}, "BgTasks": bgtasks}
        (self.root / "jupyter_config_dir").mkdir(parents=True, exist_ok=True)
        (self.root / "jupyter_config_dir" / "jupyter_server_config.json").write_text(json.dumps(config))

    def start(self, timeout: float = 60, *, ready: bool = True) -> ServerProcess:
        """Start and wait until the bgtasks API answers; a lost port race is retried.
        ``ready=False``: return once the process runs (for a server whose engine must
        not start)."""
        self._write_config()
        for _ in range(3):
            self.port = free_port()
            cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
                   f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}"]
            if os.geteuid() == 0:
                cmd.append("--allow-root")
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=log,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            if not ready or self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"jupyter server did not start; log:\n{self.log_path.read_text()[-4000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                # Ready once the extension has started its engine (503 before that).
                if requests.get(self.api + "tasks?limit=1", headers=self.headers, timeout=2).ok:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        return False

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        """A request to a bgtasks route (``path`` under ``bgtasks/api/``), with the token."""
        return requests.request(method, self.api + path, headers=self.headers, timeout=30, **kw)

    def wait_end(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        """The task's record once it is finished, failed or cancelled."""
        deadline = time.monotonic() + timeout
        while True:
            task: dict[str, Any] = self.call("GET", f"tasks/{task_id}").json()
            if task["state"] in ("finished", "failed", "cancelled"):
                return task
            assert time.monotonic() < deadline, f"never ended: {task}"
            time.sleep(0.05)

    def kill9(self) -> None:
        """SIGKILL the server process alone (not its group), and reap it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the server (it stops its engine and workers in order), then SIGKILL
        whatever of its process group is left."""
        if self.proc is None:
            return
        stop_group(self.proc, timeout)

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
