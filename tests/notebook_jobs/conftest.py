"""A real Jupyter server (subprocess, :mod:`tests.server_process`) whose ``root_dir`` holds
the test notebooks, real process workers, real kernels started by those workers.

Fixtures
--------
``nb_server`` (module)
    A started :class:`~tests.server_process.ServerProcess` with one process worker and
    the default pool (one ready kernel); ``.root`` is its ``root_dir``.
``notebook(name, *cells, tags=None, kernel="python3") -> str``
    Writes a notebook of code cells (``"md:..."``: markdown) under the root (``tags``:
    ``{cell index: [tags]}``)
    and returns its root-relative path.
``post(server, params, **task) -> dict``
    ``POST tasks`` of kind ``notebook``; asserts 201 and returns the task.

``kernel_processes(server)``: pids of the ipykernels started under that server (found by
their environment: the server's temp ``JUPYTER_RUNTIME_DIR``), for "nothing left running".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.server_process import ServerProcess

NotebookMaker = Callable[..., str]
MARKDOWN = "md:"
"""A cell given as ``"md:text"`` is a markdown cell."""


def write_notebook(root: Path, name: str, *cells: str, tags: dict[int, list[str]] | None = None,
                   kernel: str | None = "python3") -> str:
    nb = nbformat.v4.new_notebook()
    if kernel is not None:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    for i, source in enumerate(cells):
        if source.startswith(MARKDOWN):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[len(MARKDOWN):]))
            continue
        cell = nbformat.v4.new_code_cell(source)
        if tags and i in tags:
            cell.metadata["tags"] = tags[i]
        nb.cells.append(cell)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return name


def start_server(root: Path, **config: Any) -> ServerProcess:
    return ServerProcess(root, root / ".store" / "tasks.sqlite",
                         config={"workers": 1, **config}).start()


@pytest.fixture(scope="module")
def nb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("nbroot"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def notebook(nb_server: ServerProcess) -> NotebookMaker:
    def make(name: str, *cells: str, tags: dict[int, list[str]] | None = None,
             kernel: str | None = "python3") -> str:
        return write_notebook(nb_server.root, name, *cells, tags=tags, kernel=kernel)

    return make


def post(server: ServerProcess, params: dict[str, Any], **task: Any) -> dict[str, Any]:
    r = server.call("POST", "tasks", json={"kind": "notebook", "params": params, **task})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def log_text(server: ServerProcess, task_id: str) -> str:
    text: str = server.call("GET", f"tasks/{task_id}/log").json()["text"]
    return text


def wait_log(server: ServerProcess, task_id: str, needle: str, timeout: float = 60) -> str:
    """The task's log once it holds ``needle`` (read while the task runs)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_text(server, task_id)
        if needle in text:
            return text
        assert time.monotonic() < deadline, f"{needle!r} never in the log: {text!r}"
        time.sleep(0.05)


def kernel_processes(server: ServerProcess, fork_servers: bool = False) -> set[int]:
    """Live ipykernel processes started under ``server`` (their environment holds its
    temp runtime dir), and its workers' kernel fork servers too with ``fork_servers``."""
    needle = f"JUPYTER_RUNTIME_DIR={server.root / 'jupyter_runtime_dir'}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/comm", "rb") as f:
                comm = f.read().strip()
            if not (b"ipykernel" in cmdline or comm == b"ipykernel"
                    or (fork_servers and b"forkserver" in cmdline)):
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_copy(server: ServerProcess, rel: str) -> Any:
    return nbformat.read(str(server.root / rel), as_version=4)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` cannot take new files meanwhile: mode 0555, or for root (whom modes do
    not stop) the immutable attribute; the test is skipped where neither works."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only here (chattr +i refused)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


MAKE_READ_ONLY = """import os, subprocess
if os.geteuid() == 0:
    subprocess.run(["chattr", "+i", "."], check=True)
else:
    os.chmod(".", 0o555)"""
"""A cell that makes its own folder read-only (its copy then cannot be written)."""
