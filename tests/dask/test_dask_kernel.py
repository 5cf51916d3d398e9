"""``%%bgtask --executor dask`` in a real kernel started by a real server whose dask
executor points at a real cluster: the cell's outputs come back into the kernel."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.kernel.conftest import Kernel, start_server_kernel, stop_server_kernel, wait_eval
from tests.server_process import ServerProcess


@pytest.fixture
def dask_kernel(dask_server: ServerProcess) -> Iterator[Kernel]:
    k = start_server_kernel(dask_server)
    try:
        k.execute_ok("%load_ext bgtasks_ext")
        yield k
    finally:
        stop_server_kernel(dask_server, k)


def test_bgtask_cell_on_dask_brings_its_outputs_back(dask_kernel: Kernel, dask_server: ServerProcess) -> None:
    # Given a variable in the kernel
    dask_kernel.execute_ok("base = 20")
    # When a cell runs in the background on the Dask cluster
    dask_kernel.execute_ok("%%bgtask --executor dask on dask\nimport os\ny = base * 2\nwhere = os.getpid()")
    # Then its outputs land in the kernel
    assert wait_eval(dask_kernel, "globals().get('y')", 40) == 40
    where = dask_kernel.eval("where")
    assert where != dask_kernel.eval("__import__('os').getpid()")
    task = dask_server.call("GET", "tasks", params={"limit": 5}).json()["tasks"][0]
    assert task["name"] == "on dask" and task["executor"] == "dask" and task["state"] == "finished"


def test_bgtask_error_on_dask_shows_the_cells_traceback(dask_kernel: Kernel, dask_server: ServerProcess) -> None:
    dask_kernel.execute_ok("%%bgtask --executor dask broken\ndef inner():\n    return 1 / 0\nr = inner()")
    tasks = dask_server.call("GET", "tasks", params={"limit": 1}).json()["tasks"]
    done = dask_server.wait_end(tasks[0]["id"])
    assert done["state"] == "failed" and done["error"]["type"] == "ZeroDivisionError"
    assert "inner" in done["error"]["traceback"]


def test_a_big_input_travels_to_the_dask_worker(dask_kernel: Kernel) -> None:
    # A 5 MB input (scattered to a worker, not sent through the scheduler inside the task)
    dask_kernel.execute_ok("blob = bytes(range(256)) * 20_000")
    dask_kernel.execute_ok("%%bgtask --executor dask\nsize = len(blob)\nlast = blob[-1]")
    assert wait_eval(dask_kernel, "[globals().get('size'), globals().get('last')]", [5_120_000, 255]) \
        == [5_120_000, 255]


def test_a_schedule_made_with_executor_dask_runs_there(dask_kernel: Kernel, dask_server: ServerProcess) -> None:
    dask_kernel.execute_ok("%%bgtask --every 0.5 --executor dask ticking\nimport os\nprint('tick', os.getpid())")
    dask_kernel.execute_ok("sched = _")
    schedule_id = dask_kernel.eval("sched.id")
    deadline = time.monotonic() + 60
    runs: list = []
    while time.monotonic() < deadline:
        runs = [t for t in dask_server.call("GET", "tasks", params={"schedule_id": schedule_id}).json()["tasks"]
                if t["state"] == "finished"]
        if len(runs) >= 2:
            break
        time.sleep(0.2)
    dask_kernel.execute_ok("sched.disable()")
    assert len(runs) >= 2, runs
    assert all(t["executor"] == "dask" and t["placement"] for t in runs)
    assert "tick" in dask_server.call("GET", f"tasks/{runs[0]['id']}/log").json()["text"]
