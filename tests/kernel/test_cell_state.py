"""The notebook's state stays the user's: re-run cells, outputs between cells, attach after
a restart. A real server, real kernels it started, real worker processes (conftest.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.kernel.conftest import Kernel
from tests.kernel.conftest import wait_eval as _wait_eval
from tests.kernel.conftest import widget_text as _notes

Rest = Callable[..., requests.Response]






def _wait_state(rest: Rest, task_id: str, states: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = rest("GET", f"tasks/{task_id}").json()["state"]
        if state in states:
            return state
        time.sleep(0.1)
    return state


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


# -- 1. a re-run cell supersedes its previous task ---------------------------------------
def test_rerunning_a_cell_supersedes_its_running_task(loaded: Kernel, rest: Rest) -> None:
    # Given a %%bgtask cell, run from JupyterLab (the request carries the cell's id),
    # whose task is still running
    cell = f"cell-{uuid.uuid4()}"
    loaded.execute_ok("%%bgtask slow\nimport time\ntime.sleep(4)\nwho = 'first'", cell_id=cell)
    first = loaded.eval("_.id")
    assert _wait_state(rest, first, {"running"}) == "running"
    # When the user edits the cell and runs it again
    loaded.execute_ok("%%bgtask quick\nwho = 'second'", cell_id=cell)
    second = loaded.eval("_.id")
    assert second != first
    # Then the previous task is cancelled, and the new widget says which one it replaced
    assert _wait_state(rest, first, {"cancelled", "finished", "failed"}) == "cancelled"
    assert loaded.wait_for(lambda: f"superseded task {first}" in _notes(loaded), 10), _notes(loaded)
    # And the re-run's outputs are the ones that stay, after the first would have ended
    assert _wait_state(rest, second, {"finished", "failed", "cancelled"}) == "finished"
    time.sleep(4.5)
    assert loaded.eval("who") == "second"


def test_without_a_cell_id_nothing_is_superseded(loaded: Kernel, rest: Rest) -> None:
    # Given a client that sends no cell ids (nbclient, a console)
    loaded.execute_ok("%%bgtask\nimport time\ntime.sleep(1)\nruns = 1")
    first = loaded.eval("_.id")
    # When the same cell runs twice / Then both tasks run to the end
    loaded.execute_ok("%%bgtask\nimport time\ntime.sleep(1)\nruns = 1")
    second = loaded.eval("_.id")
    assert _wait_state(rest, first, {"finished", "failed", "cancelled"}) == "finished"
    assert _wait_state(rest, second, {"finished", "failed", "cancelled"}) == "finished"


# -- 2. outputs land between cells, never while one runs -------------------------------------
def test_outputs_never_land_while_a_cell_runs(loaded: Kernel) -> None:
    # Given a background cell that assigns `i`, finishing while the next cell loops over `i`
    loaded.execute_ok("%%bgtask late\nimport time\ntime.sleep(0.5)\ni = 999")
    loaded.execute_ok("h = _")
    # When a foreground loop runs past the moment the task finishes
    loaded.execute_ok("import time\ndata, seen_done = [], []\nfor i in range(12):\n"
                      "    time.sleep(0.25)\n    data.append(i)\n    seen_done.append(h.done())\n"
                      "loop_end = i", timeout=60)
    # Then the task did finish mid-loop, yet the loop's own `i` was never changed under it
    assert True in loaded.eval("seen_done")[:9], "the task did not finish during the loop"
    assert loaded.eval("data") == list(range(12))
    assert loaded.eval("loop_end") == 11
    # And once the cell ended, the task's `i` landed
    assert loaded.eval("i") == 999


def test_outputs_land_while_the_kernel_is_idle(loaded: Kernel) -> None:
    # When a background cell finishes and no other cell runs
    loaded.execute_ok("%%bgtask idle\nanswer = 42")
    # Then its outputs land anyway (the widget says so without another cell running)
    assert loaded.wait_for(lambda: "outputs set: answer" in _notes(loaded), 30), _notes(loaded)
    assert loaded.eval("answer") == 42


def test_waiting_in_the_cell_lands_the_outputs_there(loaded: Kernel) -> None:
    # Given a background cell
    loaded.execute_ok("%%bgtask\nwaited = 'here'")
    # When the next cell waits for it and reads its output in the same cell
    result = loaded.execute_ok("_.wait(timeout=30)\nprint(waited)")
    # Then waiting was the point where the output landed
    assert "here" in result.text


def test_imports_are_not_outputs_unless_named(loaded: Kernel) -> None:
    # When a background cell imports modules and a function, and computes a value
    loaded.execute_ok("%%bgtask\nimport json\nfrom bgtasks_ext import track\n"
                      "encoded = json.dumps([n for n in track([1, 2])])")
    # Then only the value comes back, not what the cell imported to make it
    assert _wait_eval(loaded, "globals().get('encoded')", "[1, 2]") == "[1, 2]"
    assert loaded.eval("['json' in globals(), 'track' in globals()]") == [False, False]
    # And --out brings back an imported name when asked to
    loaded.execute_ok("%%bgtask --out json,value\nimport json\nvalue = 2")
    assert _wait_eval(loaded, "type(globals().get('json')).__name__", "module") == "module"


# -- 3. attach after a kernel restart ------------------------------------------------------
def test_attach_after_a_restart_sets_the_cells_outputs(loaded: Kernel) -> None:
    # Given a %%bgtask cell still running when the kernel restarts
    loaded.execute_ok("%%bgtask survivor\nimport time\ntime.sleep(2)\nafter_restart = 42")
    task_id = loaded.eval("_.id")
    loaded.restart()
    loaded.execute_ok("%load_ext bgtasks_ext")
    assert loaded.eval("'after_restart' in globals()") is False
    # When the new kernel attaches to the task
    loaded.execute_ok(f"%bgtasks attach {task_id}")
    # Then its outputs arrive when it ends, and the widget says so
    assert _wait_eval(loaded, "globals().get('after_restart')", 42) == 42
    assert loaded.wait_for(lambda: "outputs set: after_restart" in _notes(loaded), 10), _notes(loaded)
    # And the Python API's handle gives the cell's outputs as its result
    assert loaded.eval(f"__import__('bgtasks_ext').attach({task_id!r}).result(timeout=30)") == \
        {"after_restart": 42}


def test_attach_says_why_it_sets_nothing(loaded: Kernel, rest: Rest) -> None:
    # Given a task of another kind, and a function call, both finished
    sleeper = rest("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0.1}}).json()["id"]
    loaded.execute_ok("import bgtasks_ext\ncall = bgtasks_ext.submit(abs, -3)\ncall.wait(30)")
    call = loaded.eval("call.id")
    assert _wait_state(rest, sleeper, {"finished"}) == "finished"
    # When each is attached / Then the widget says why no outputs are set
    loaded.execute_ok(f"%bgtasks attach {sleeper}")
    assert loaded.wait_for(lambda: "a 'sleep' task, not a %%bgtask cell" in _notes(loaded), 10), \
        _notes(loaded)
    loaded.execute_ok(f"%bgtasks attach {call}")
    assert loaded.wait_for(lambda: "not a %%bgtask cell (h.result() is its value)" in _notes(loaded), 10)
    assert loaded.eval("_.result(timeout=30)") == 3


def test_a_kernel_executor_cell_may_make_unpicklable_outputs(loaded: Kernel) -> None:
    # When a kernel-executor cell makes an object that cannot be pickled (its very use)
    loaded.execute_ok("%%bgtask --executor kernel\nimport threading\nguard = threading.Lock()\ncount = 5")
    # Then the task finishes, the names are here, and result() gives them as a dict
    loaded.execute_ok("h = _\nh.wait(30)")
    assert loaded.eval("[h.state, h.error]") == ["finished", None]
    assert loaded.eval("sorted(h.result())") == ["count", "guard"]
    assert loaded.eval("h.result()['guard'] is guard") is True
    assert loaded.wait_for(lambda: "outputs set: count, guard" in _notes(loaded), 10), _notes(loaded)
