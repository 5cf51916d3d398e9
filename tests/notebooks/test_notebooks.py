"""Every notebook in notebooks/ runs clean, top to bottom, in a real kernel that can
reach a live bgtasks server.

The server is a real ``jupyter server`` subprocess (:mod:`tests.server_process`) with a
known kernel secret; the kernels nbclient starts get exactly the environment that server
gives its own kernels (``BGTASKS_URL`` = its ``bgtasks/api/`` URL, ``BGTASKS_TOKEN`` = its
``kernel_secret``, ``BGTASKS_ROOT`` = its root directory, which holds the checkout, so a
notebook job finds the files a notebook names) and a connection file named
``kernel-<id>.json`` as a server names them (the kernel's id is how its tasks say where
they come from), so the notebooks run as they would in JupyterLab.

They run as a user runs them with ``make lab``: in a git checkout's ``notebooks/``, with
a checkpoint, saved back (as JupyterLab's autosave does) by a contents manager with
``make lab``'s Jupyter config (``tools/lab-config/``); the checkout must stay clean (the
shipped notebooks are saved without outputs, what they write is git-ignored). The
checkout is a temp git repository holding copies of the project's notebooks (with the
folders beside them, e.g. ``examples/`` that notebook_jobs.ipynb runs), tools and
``.gitignore``, so the tests never touch the real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from traitlets.config import Config, PyFileConfigLoader

from tests.server_process import API, ServerProcess

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXECUTED_COPY = re.compile(r"\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?\.ipynb$")
"""The name of a notebook job's executed copy (``report.2026-11-30T09-15-02.ipynb``)."""
EXAMPLES = sorted(p for p in (REPO / "notebooks").glob("*/*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and not EXECUTED_COPY.search(p.name))
"""Notebooks the shipped ones run as jobs (committed without outputs too)."""
STRIP = REPO / "tools" / "strip_notebook.py"
LAB_CONFIG = Path("tools", "lab-config", "jupyter_server_config.py")
CAPABILITIES = {"quickstart.ipynb", "progress-and-cancel.ipynb", "outputs-back.ipynb",
                "kernel-executor.ipynb", "python-api.ipynb", "schedules.ipynb",
                "notebook_jobs.ipynb"}


@pytest.fixture(scope="module")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("nbserver")
    secret = secrets.token_urlsafe(24)
    server = ServerProcess(root, root / "tasks.sqlite",
                           config={"kernel_secret": secret, "cancel_grace": 1.0})
    with server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BGTASKS")}
        env.update(BGTASKS_URL=server.url + API, BGTASKS_TOKEN=secret, BGTASKS_ROOT=str(root))
        yield env


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True, timeout=60).stdout


def in_git_checkout() -> bool:
    return shutil.which("git") is not None and (REPO / ".git").exists()


@pytest.fixture
def checkout(tmp_path: Path, live_env: dict[str, str]) -> Path:
    """A git checkout of the project's notebooks/, tools/ and .gitignore, committed; under
    the server's root (a notebook job runs files under it only)."""
    repo = Path(live_env["BGTASKS_ROOT"]) / "checkouts" / tmp_path.name
    shutil.copytree(REPO / "notebooks", repo / "notebooks", ignore=_not_notebooks)
    shutil.copytree(REPO / "tools", repo / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false",
        "commit", "-q", "-m", "notebooks")
    assert git(repo, "status", "--porcelain") == ""
    return repo


def _not_notebooks(folder: str, names: list[str]) -> list[str]:
    """What of notebooks/ a checkout leaves out: anything but notebooks and folders, and
    what running them left behind (checkpoints, executed copies)."""
    return [n for n in names if n == ".ipynb_checkpoints" or EXECUTED_COPY.search(n)
            or not (n.endswith(".ipynb") or Path(folder, n).is_dir())]


def test_there_are_notebooks() -> None:
    assert CAPABILITIES <= {p.name for p in NOTEBOOKS}


@pytest.mark.skipif(not in_git_checkout(), reason="not a git checkout")
@pytest.mark.parametrize("path", NOTEBOOKS + EXAMPLES,
                         ids=lambda p: p.relative_to(REPO / "notebooks").as_posix())
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    # Given a notebook as git holds it (the index: committed, or about to be)
    text = git(REPO, "show", f":{path.relative_to(REPO).as_posix()}")
    nb = nbformat.reads(text, as_version=4)

    # Then it has no outputs and no execution counts
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
    # And it is what `make lab` saves after a run (tools/strip_notebook.py), byte for byte
    stripped = subprocess.run([sys.executable, str(STRIP)], input=text, capture_output=True,
                              text=True, check=True, timeout=60).stdout
    assert stripped == text, f"{path.name}: run tools/strip_notebook.py on it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path: Path, tmp_path: Path, checkout: Path,
                             live_env: dict[str, str]) -> None:
    # Given a notebook in a git checkout's notebooks/, opened (with its checkpoint) by a
    # Jupyter server with `make lab`'s config, and a kernel that can reach a live server
    folder = checkout / "notebooks"
    config = PyFileConfigLoader(str(checkout / LAB_CONFIG)).load_config()
    assert isinstance(config, Config)
    contents = config.ServerApp.contents_manager_class(config=config, root_dir=str(folder))
    asyncio.run(contents.create_checkpoint(path.name))
    nb = nbformat.read(folder / path.name, as_version=4)
    km = KernelManager(kernel_name="python3",
                       connection_file=str(tmp_path / f"kernel-{uuid.uuid4()}.json"))
    client = NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(folder)}})
    # When every cell runs in notebooks/, and JupyterLab saves the notebook with its
    # outputs (its autosave) / Then no cell raises
    try:
        client.execute(env=live_env)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    # (the notebook's JSON, as the page sends it)
    model = {"type": "notebook", "format": "json", "content": json.loads(json.dumps(nb))}
    asyncio.run(contents.save(model, path.name))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # And no magic refused anything, except where a notebook shows a refusal on purpose
    refusals = [o["text"] for o in outputs if o.get("name") == "stderr" and "bgtask" in o["text"]]
    assert all("--executor kernel" in text for text in refusals), refusals
    # And the checkout is still clean: the notebook was saved without its outputs, and
    # every file it wrote is git-ignored
    assert outputs, "the run had outputs to strip"
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
