"""A real Dask cluster (``dask scheduler`` + ``dask worker``, separate processes on
loopback, each in its own process group and stopped by that id), and a real Jupyter
server whose ``dask`` executor points at it.

Fixtures
--------
``cluster`` (session)
    A :class:`Cluster`: ``.address`` (``tcp://127.0.0.1:PORT``), ``.workers`` (the
    ``dask worker`` processes: each a nanny whose child is the worker proper),
    ``.worker_pids()`` (the worker processes proper, not the nannies).
``dask_server`` (session)
    A :class:`~tests.server_process.ServerProcess` with ``dask_scheduler`` = the cluster,
    the kinds of :mod:`tests.dask.dask_kinds` registered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess, free_port

pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).parent / "dask")
KINDS = [f"tests.dask.dask_kinds:{name}" for name in ("whoami", "steps", "stubborn", "boom", "hog", "chatty")]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append(pid)
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Cluster:
    def __init__(self, root: Path, nthreads: int = 2) -> None:
        self.root = root
        self.nthreads = nthreads
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    def _popen(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(self.root / log, "ab") as out:
            return subprocess.Popen([DASK, *args], env=self._env(), cwd=str(REPO), stdout=out,
                                    stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)

    def start_scheduler(self) -> None:
        self.scheduler = self._popen(["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard", "--no-show"], "scheduler.log")

    def add_worker(self) -> subprocess.Popen[bytes]:
        w = self._popen(["worker", self.address, "--host", "127.0.0.1", "--nthreads", str(self.nthreads),
                         "--no-dashboard", "--death-timeout", "60"], f"worker{len(self.workers)}.log")
        self.workers.append(w)
        return w

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        deadline = time.monotonic() + timeout
        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
                assert time.monotonic() < deadline, (self.root / "worker0.log").read_text()[-3000:]
                time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The Dask worker processes (the nannies' children), as the scheduler knows them."""
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            return sorted(client.run(os.getpid).values())

    def stop(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.start_scheduler()
        c.add_worker()
        c.wait_workers(1)
        yield c
    finally:
        c.stop()


def dask_server_process(root: Path, scheduler: str, **config: Any) -> ServerProcess:
    return ServerProcess(root, root / "store" / "tasks.sqlite", config={
        "dask_scheduler": scheduler, "cancel_grace": 1.0, "extra_kinds": KINDS, **config})


@pytest.fixture(scope="session")
def dask_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = dask_server_process(tmp_path_factory.mktemp("daskserver"), cluster.address)
    server.start()
    try:
        wait_connected(server)
        yield server
    finally:
        server.stop()


def wait_connected(server: ServerProcess, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = server.call("GET", "status").json()["executors"]["dask"]
        if status["connected"]:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def wait_state(server: ServerProcess, task_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = server.call("GET", f"tasks/{task_id}").json()
        if task["state"] in states:
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
