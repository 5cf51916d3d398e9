"""The kernel fork server (kinds/forkserver.py) on its own: real forked ipykernels."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from bgtasks_ext.kinds.forkserver import ForkServer
from tests.notebook_jobs.conftest import alive


def run_code(client: BlockingKernelClient, code: str) -> str:
    msg_id = client.execute(code)
    out = []
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def test_a_forked_kernel_works_and_imports_in_its_own_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fork server started from a folder holding a thread.py (a module name that a
    # library the kernel imports tries first) and a job folder with a module of its own
    start = tmp_path / "start"
    start.mkdir()
    (start / "thread.py").write_text("raise SystemExit('thread.py imported by mistake')\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "helper_mod.py").write_text("VALUE = 'helper here'\n")
    monkeypatch.chdir(start)
    server = ForkServer()
    sockets = Path("/tmp") / f"bgt-fs-{os.getpid()}"
    sockets.mkdir(exist_ok=True)
    conn, _ = write_connection_file(str(sockets / "k.json"), transport="ipc", ip=str(sockets / "k"))
    pid = None
    try:
        # When it forks a kernel working in the job folder
        pid = server.spawn(["-f", conn], str(work), dict(os.environ))
        client = BlockingKernelClient()
        client.load_connection_file(conn)
        client.start_channels()
        client.wait_for_ready(timeout=60)
        # Then the kernel runs there, imports from there, and shows as an ipykernel
        text = run_code(client, "import os, helper_mod\nprint(os.getcwd(), helper_mod.VALUE)")
        assert text == f"{work} helper here\n", text
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "ipykernel"
        client.stop_channels()
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        server.close()
        for f in sockets.iterdir():
            f.unlink()
        sockets.rmdir()
    # And once its fork server is gone, nothing of it is left
    deadline = time.monotonic() + 5
    while pid is not None and alive(pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
