"""The process worker's pool of ready kernels: a job takes a kernel started before it was
asked for, in its own folder, without the server's secret; no state carries over from
one job to the next; the server's stop leaves no kernel behind; ``notebook_kernels = 0``
keeps none."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.notebook_jobs.conftest import (kernel_processes, log_text, post, start_server,
                                          write_notebook)
from tests.server_process import ServerProcess

AGE = """import os
ticks = os.sysconf("SC_CLK_TCK")
with open("/proc/self/stat") as f:
    started = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
with open("/proc/uptime") as f:
    print("AGE", float(f.read().split()[0]) - started)
print("CWD", os.getcwd())
print("URL", os.environ.get("BGTASKS_URL"), os.environ.get("BGTASKS_TOKEN"))"""


def age_of(text: str) -> float:
    return float(text.split("AGE ", 1)[1].split()[0])


def run(server: ServerProcess, params: dict[str, object]) -> tuple[dict[str, object], str, float]:
    """Run a job; its record, its log, and its POST -> ended seconds."""
    start = time.monotonic()
    task = server.wait_end(post(server, params)["id"])
    took = time.monotonic() - start
    assert task["state"] == "finished", task
    return task, log_text(server, str(task["id"])), took


def wait_pool(server: ServerProcess, count: int, timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(found := kernel_processes(server)) < count:
        assert time.monotonic() < deadline, f"pool never had {count} kernel(s): {found}"
        time.sleep(0.1)
    time.sleep(1.0)  # started is not ready: give it time to answer
    return found


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("poolroot"))
    write_notebook(server.root, "age.ipynb", AGE)
    write_notebook(server.root, "sets.ipynb", "leak = 42\nimport json\nprint('set')")
    write_notebook(server.root, "reads.ipynb", "print('LEAK' if 'leak' in globals() or 'json' in dir() else 'CLEAN')")
    (server.root / "subdir").mkdir()
    # A module beside the notebooks, and one named as a module libraries try to import
    # (Python 2's "thread"): the kernels' fork server must not import it
    (server.root / "helper_mod.py").write_text("VALUE = 'from the helper'\n")
    (server.root / "thread.py").write_text("raise SystemExit('thread.py imported by mistake')\n")
    write_notebook(server.root, "imports.ipynb", "import helper_mod\nprint(helper_mod.VALUE)")
    try:
        yield server
    finally:
        server.stop()


def test_a_job_runs_on_a_kernel_started_before_it(pooled: ServerProcess) -> None:
    # Given a worker that ran a notebook job (its pool then fills in the background)
    run(pooled, {"path": "age.ipynb"})
    wait_pool(pooled, 1)
    # When the next job runs
    task, text, took = run(pooled, {"path": "age.ipynb", "cwd": "subdir"})
    # Then its kernel is older than the job, works in the job's folder, and has no secret
    assert age_of(text) > took, (text, took)
    assert f"CWD {pooled.root / 'subdir'}" in text
    assert "URL None None" in text


def test_a_pool_kernel_imports_from_the_notebooks_folder(pooled: ServerProcess) -> None:
    # Given a worker with a ready kernel
    run(pooled, {"path": "age.ipynb"})
    wait_pool(pooled, 1)
    # When a job imports a module that sits beside its notebook
    _, text, _ = run(pooled, {"path": "imports.ipynb"})
    # Then it is found (the kernel looks in its working directory)
    assert "from the helper" in text, text


def test_no_state_carries_from_one_job_to_the_next(pooled: ServerProcess) -> None:
    # Given a job that set variables and imported a module
    run(pooled, {"path": "sets.ipynb"})
    wait_pool(pooled, 1)
    # When the next job looks for them
    _, text, _ = run(pooled, {"path": "reads.ipynb"})
    # Then they are not there: it ran on another kernel
    assert "CLEAN" in text, text


def test_a_job_does_not_wait_on_a_dead_pool_kernel(pooled: ServerProcess) -> None:
    # Given a worker whose ready kernel was killed while it waited in the pool
    run(pooled, {"path": "age.ipynb"})
    for pid in wait_pool(pooled, 1):
        os.kill(pid, signal.SIGKILL)
    # When the next job runs
    task, text, took = run(pooled, {"path": "age.ipynb"})
    # Then it started a kernel of its own, and soon
    assert age_of(text) < took < 20, (text, took)


def test_the_kernels_end_with_the_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given a server whose worker keeps a ready kernel, and another running a job
    server = start_server(tmp_path_factory.mktemp("stoproot"), workers=2)
    try:
        write_notebook(server.root, "one.ipynb", "print(1)")
        write_notebook(server.root, "long.ipynb", "print('go', flush=True)", "import time\ntime.sleep(120)")
        run(server, {"path": "one.ipynb"})
        kernels = wait_pool(server, 1)
        running = post(server, {"path": "long.ipynb"})
        deadline = time.monotonic() + 60
        while "go" not in log_text(server, running["id"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        # When the server stops
        server.stop()
    # Then none of its kernels (nor their fork server) is left running
    deadline = time.monotonic() + 10
    while left := kernel_processes(server, fork_servers=True):
        assert time.monotonic() < deadline, f"kernels left running: {left} (pool was {kernels})"
        time.sleep(0.1)


STUBBORN = """import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("PID", os.getpid(), flush=True)
time.sleep(120)"""


@pytest.mark.parametrize("grace", [1.0, 6.0])
def test_a_cell_that_ignores_the_interrupt_is_still_ended(
        tmp_path_factory: pytest.TempPathFactory, grace: float) -> None:
    # Given a job whose cell ignores Ctrl-C, on a server whose cancel escalates to SIGTERM
    # and SIGKILL of the worker after `grace` (1 s: before the job's own stop is done)
    server = start_server(tmp_path_factory.mktemp("stubborn"), cancel_grace=grace)
    try:
        write_notebook(server.root, "stubborn.ipynb", STUBBORN)
        task = post(server, {"path": "stubborn.ipynb"})
        deadline = time.monotonic() + 60
        while "PID" not in (text := log_text(server, task["id"])):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
        pid = int(text.split("PID ", 1)[1].split()[0])
        # When it is cancelled
        server.call("POST", f"tasks/{task['id']}/cancel")
        ended = server.wait_end(task["id"], timeout=30)
        # Then it ends cancelled and its kernel is gone
        assert ended["state"] == "cancelled", ended
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and "Z" not in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1][:3]:
            assert time.monotonic() < deadline, f"kernel {pid} still running"
            time.sleep(0.05)
    finally:
        server.stop()


def test_no_pool_when_notebook_kernels_is_0(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given a server that keeps no ready kernel
    server = start_server(tmp_path_factory.mktemp("nopool"), notebook_kernels=0)
    try:
        write_notebook(server.root, "age.ipynb", AGE)
        run(server, {"path": "age.ipynb"})
        time.sleep(2)
        # Then after a job no kernel is kept, and the next job starts its own
        assert kernel_processes(server) == set()
        _, text, took = run(server, {"path": "age.ipynb"})
        assert age_of(text) < took
    finally:
        server.stop()
