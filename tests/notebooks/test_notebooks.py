"""Every notebook in notebooks/ runs clean, top to bottom, in a real kernel that can
reach a live bgtasks server.

The server is a real ``jupyter server`` subprocess (:mod:`tests.server_process`) with a
known kernel secret; the kernels nbclient starts get exactly the environment that server
gives its own kernels (``BGTASKS_URL`` = its ``bgtasks/api/`` URL, ``BGTASKS_TOKEN`` = its
``kernel_secret``) and a connection file named ``kernel-<id>.json`` as a server names
them (the kernel's id is how its tasks say where they come from), so the notebooks run
as they would in JupyterLab.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from tests.server_process import API, ServerProcess

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CAPABILITIES = {"quickstart.ipynb", "progress-and-cancel.ipynb", "outputs-back.ipynb",
                "kernel-executor.ipynb", "python-api.ipynb"}


@pytest.fixture(scope="module")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("nbserver")
    secret = secrets.token_urlsafe(24)
    server = ServerProcess(root, root / "tasks.sqlite",
                           config={"kernel_secret": secret, "cancel_grace": 1.0})
    with server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BGTASKS")}
        env.update(BGTASKS_URL=server.url + API, BGTASKS_TOKEN=secret)
        yield env


def test_there_are_notebooks() -> None:
    assert CAPABILITIES <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path: Path, tmp_path: Path, live_env: dict[str, str]) -> None:
    # Given a notebook from notebooks/, and a kernel that can reach a live server
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name="python3",
                       connection_file=str(tmp_path / f"kernel-{uuid.uuid4()}.json"))
    client = NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(tmp_path)}})
    # When every cell runs (files it writes land in tmp_path) / Then none raises
    try:
        client.execute(env=live_env)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # And no magic refused anything, except where a notebook shows a refusal on purpose
    refusals = [o["text"] for o in outputs if o.get("name") == "stderr" and "bgtask" in o["text"]]
    assert all("--executor kernel" in text for text in refusals), refusals
