"""The store refuses a filesystem SQLite's WAL cannot trust, on a real FUSE mount.

A passthrough FUSE filesystem (fusepy) is mounted for the test, as sshfs or s3fs would
be, and the store is pointed at it: directly, and as a server's ``c.BgTasks.store_path``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bgtasks_ext.core.errors import BgTasksError
from bgtasks_ext.store.sqlite import SQLiteStore
from tests.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


def _mounted(point: Path) -> bool:
    return f" {point} " in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def fuse_dir(tmp_path: Path) -> Iterator[Path]:
    back, point = tmp_path / "back", tmp_path / "mnt"
    back.mkdir()
    point.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.fuse_passthrough", str(back), str(point)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not _mounted(point):
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode() if proc.stdout else ""
            proc.kill()
            pytest.fail(f"could not mount a FUSE filesystem (needs /dev/fuse, libfuse2, root): {out}")
        time.sleep(0.05)
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=False)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_store_on_a_fuse_mount_refuses_to_open(fuse_dir: Path) -> None:
    # Given a folder on a FUSE mount (as sshfs or s3fs give)
    store = SQLiteStore(str(fuse_dir / "bgtasks" / "tasks.sqlite"))
    # When the store opens there / Then it refuses, naming the filesystem and the setting
    with pytest.raises(BgTasksError) as exc:
        store.open()
    assert "network filesystem (fuse)" in str(exc.value) and "c.BgTasks.store_path" in str(exc.value)
    assert not (fuse_dir / "bgtasks" / "tasks.sqlite").exists()


def test_a_server_with_its_store_on_a_fuse_mount_says_why_and_runs_no_engine(
        fuse_dir: Path, tmp_path: Path) -> None:
    # Given a server whose c.BgTasks.store_path is on the FUSE mount
    srv = ServerProcess(tmp_path / "server", fuse_dir / "tasks.sqlite").start(ready=False)
    try:
        # Then its log says why, and the API answers 503 rather than using the store
        deadline = time.monotonic() + 60
        while "network filesystem (fuse)" not in srv.log_path.read_text():
            assert time.monotonic() < deadline, srv.log_path.read_text()[-3000:]
            time.sleep(0.2)
        reply = requests.get(srv.api + "tasks", headers=srv.headers, timeout=10)
        assert reply.status_code == 503
        assert not (fuse_dir / "tasks.sqlite").exists()
    finally:
        srv.stop()
