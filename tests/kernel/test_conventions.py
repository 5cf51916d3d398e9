"""Jupyter's conventions: magic errors stop a run, ``h = %bgtask f(x)`` gives the handle,
and the handle behaves like a future. A real server and real kernels (conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.kernel.conftest import Kernel
from tests.server_process import ServerProcess


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext\nimport bgtasks_ext, time")
    return kernel


def test_a_failed_launch_stops_the_queued_cells(loaded: Kernel) -> None:
    # Given Run All: cells queued behind a running one, the first of them a misused magic
    busy = loaded.execute_async("time.sleep(1)")
    bad = loaded.execute_async("%%bgtask --bogus\nx = 1")
    after = loaded.execute_async("ran_after = True")
    loaded.wait_idle(busy)
    # When they run / Then the magic's cell fails and the kernel aborts the next one
    assert loaded.wait_idle(bad).reply["ename"] == "UsageError"  # type: ignore[index]
    assert loaded.wait_idle(after).reply["status"] == "aborted"  # type: ignore[index]
    assert loaded.eval("'ran_after' in globals()") is False


def test_nbclient_stops_at_a_failed_launch(bg_server: ServerProcess, tmp_path: Path) -> None:
    # Given a notebook whose second bgtask cell has a bad option
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import bgtasks_ext\nbgtasks_ext.connect({bg_server.url!r}, "
                                  f"{bg_server.token!r})\n%load_ext bgtasks_ext"),
        nbformat.v4.new_code_cell("%%bgtask --timeout soon\nx = 1"),
        nbformat.v4.new_code_cell("after = 1"),
    ])
    km = KernelManager(kernel_name="python3", connection_file=str(tmp_path / "kernel-nbclient.json"))
    client = NotebookClient(nb, km=km, timeout=60, resources={"metadata": {"path": str(tmp_path)}})
    # When nbclient runs it (as papermill does)
    try:
        with pytest.raises(CellExecutionError) as info:
            client.execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    # Then the run stops there with the UsageError, and the next cell never ran
    assert info.value.ename == "UsageError"
    assert "invalid float value" in info.value.evalue
    assert nb.cells[2].get("execution_count") is None


def test_line_magic_returns_the_handle_shown_once(loaded: Kernel) -> None:
    # When the line magic's value is assigned
    loaded.execute_ok("h = %bgtask sum(range(4))")
    # Then it is the handle (and `_` too), and its widget was shown once
    assert loaded.eval("[type(h).__name__, h is _, h.result(timeout=30)]") == ["TaskHandle", True, 6]
    assert len(loaded.widgets_of("FloatProgressModel")) == 1
    # And a bare `%bgtask EXPR`, whose value the cell displays, still shows one widget
    result = loaded.execute_ok("%bgtask sum(range(5))")
    assert len(loaded.widgets_of("FloatProgressModel")) == 2
    # (one output: the widget's display; its text line names the handle, no Out[n] repeats it)
    assert not [o for o in result.outputs if "execution_count" in o]
    assert len([o for o in result.outputs if "TaskHandle" in str(o.get("data", {}).get("text/plain", ""))]) == 1
    assert loaded.eval("_.result(timeout=30)") == 10


def test_the_cell_magic_shows_one_widget_and_binds_underscore(loaded: Kernel) -> None:
    result = loaded.execute_ok("%%bgtask\nz = 1")
    assert len(loaded.widgets_of("FloatProgressModel")) == 1
    assert not [o for o in result.outputs if "execution_count" in o]  # no Out[n]
    assert loaded.eval("type(_).__name__") == "TaskHandle"


def test_the_handle_is_future_like(loaded: Kernel) -> None:
    # Given a running task and a callback added while it runs
    loaded.execute_ok("h = bgtasks_ext.submit(time.sleep, 0.5)\nseen = []\n"
                      "h.add_done_callback(lambda f: seen.append((f is h, f.done())))\n"
                      "running = h.done()\nlegacy = bool(h.done)")
    assert loaded.eval("[running, legacy]") == [False, False]
    # When it ends / Then the callback got the handle, and done() is a method
    loaded.execute_ok("h.wait(30)")
    assert loaded.eval("[seen, h.done(), bool(h.done), h.cancelled(), h.exception() is None]") == \
        [[[True, True]], True, True, False, True]
    # And a callback added afterwards runs at once
    loaded.execute_ok("late = []\nh.add_done_callback(late.append)")
    assert loaded.eval("late[0] is h") is True


def test_exception_and_cancelled(loaded: Kernel) -> None:
    loaded.execute_ok("bad = bgtasks_ext.submit(int, 'x')\nerr = bad.exception(timeout=30)")
    assert loaded.eval("[type(err).__name__, err.type, bad.cancelled()]") == \
        ["TaskFailed", "ValueError", False]
    loaded.execute_ok("slow = bgtasks_ext.submit(time.sleep, 30)\nslow.cancel()\n"
                      "slow.wait(30)\n"
                      "try:\n    slow.exception()\n    raised = None\n"
                      "except bgtasks_ext.TaskCancelled:\n    raised = 'TaskCancelled'")
    assert loaded.eval("[slow.cancelled(), raised]") == [True, "TaskCancelled"]


def test_await_does_not_block_the_kernel_loop(loaded: Kernel) -> None:
    # Given a coroutine ticking on the kernel's own asyncio loop
    # When a cell awaits a task of half a second / Then the loop kept turning while it
    # waited (blocked, it would not have ticked more than once), and the
    # await gives the task's result
    loaded.execute_ok("import asyncio\nticks = 0\nasync def ticker():\n    global ticks\n"
                      "    while True:\n        ticks += 1\n        await asyncio.sleep(0.01)\n"
                      "t = asyncio.ensure_future(ticker())\n"
                      "import time\ndef slow_sum(xs):\n    time.sleep(0.5)\n    return sum(xs)\n"
                      "value = await bgtasks_ext.submit(slow_sum, [1, 2, 3])\n"
                      "t.cancel()\nwaited_ticks = ticks", timeout=60)
    assert loaded.eval("value") == 6
    assert loaded.eval("waited_ticks") >= 3


def test_await_lands_a_cells_outputs(loaded: Kernel) -> None:
    # Given a background cell / When the next cell awaits it and reads its output
    loaded.execute_ok("%%bgtask\nawaited = 'yes'")
    result = loaded.execute_ok("outs = await _\nprint(awaited, outs)")
    # Then the output landed at the await, and the result is the cell's outputs
    assert "yes {'awaited': 'yes'}" in result.text
