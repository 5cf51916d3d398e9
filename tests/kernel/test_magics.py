"""The magics in a real kernel started by a real server (fixtures in conftest.py).

Cells run over the kernel protocol; widgets are read from their comm_open/comm_msg
traffic on iopub, as a frontend would see them. No browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.kernel.conftest import ExecResult, Kernel
from tests.kernel.conftest import wait_eval as _wait_eval
from tests.kernel.conftest import widget_text as _html_values

Rest = Callable[..., requests.Response]


def _stderr(result: ExecResult) -> str:
    return "".join(o["text"] for o in result.outputs if o.get("name") == "stderr")


def _usage_error(result: ExecResult) -> str:
    """The one line IPython shows for a ``UsageError``: the cell failed (its reply is an
    error, so Run All stops) with no traceback and no iopub error message."""
    assert result.reply is not None and result.reply["status"] == "error", result.reply
    assert result.reply["ename"] == "UsageError", result.reply
    assert result.error is None, result.error_text
    assert "Traceback" not in result.text
    err = _stderr(result)
    assert err.startswith("UsageError: ") and err.count("\n") == 1, err
    return err


def _task_count(rest: Rest) -> int:
    return len(rest("GET", "tasks", params={"limit": 1000}).json()["tasks"])






@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


def test_outputs_arrive_in_the_namespace(loaded: Kernel) -> None:
    # Given a variable in the kernel
    loaded.execute_ok("base = 20")
    # When a cell that reads it and assigns two names runs in the background
    started = time.monotonic()
    result = loaded.execute_ok("%%bgtask compute\ny = base * 2\nz = y + 2")
    returned = time.monotonic() - started
    # Then control came back at once, with a widget
    assert returned < 2.0
    assert loaded.widgets_of("FloatProgressModel")
    # And the outputs land in the user namespace when it finishes, and the widget says so
    assert _wait_eval(loaded, "[globals().get('y'), globals().get('z')]", [40, 42]) == [40, 42]
    assert loaded.wait_for(lambda: "outputs set: y, z" in _html_values(loaded), 10), _html_values(loaded)
    assert not _stderr(result)


def test_out_narrows_and_relative_paths_use_the_kernel_cwd(loaded: Kernel, tmp_path: Any) -> None:
    # Given a file in the kernel's working directory
    loaded.execute_ok(f"import os; os.chdir({str(tmp_path)!r}); open('data.txt', 'w').write('abc')")
    # When the cell reads it by a relative path and only `n` is asked for
    loaded.execute_ok("%%bgtask --out n\ntext = open('data.txt').read()\nn = len(text)")
    # Then `n` comes back and `text` does not
    assert _wait_eval(loaded, "globals().get('n')", 3) == 3
    assert loaded.eval("'text' in globals()") is False


def test_progress_moves_on_the_widget(loaded: Kernel) -> None:
    # When a background cell reports progress while it works
    loaded.execute_ok("%%bgtask steps\nimport time\nfrom bgtasks_ext import progress\n"
                      "for i in range(6):\n    progress(i + 1, total=6, message=f'step {i + 1}')\n"
                      "    time.sleep(0.3)")
    bars = loaded.widgets_of("FloatProgressModel")
    assert bars
    bar = bars[-1]

    def values() -> list[float]:
        return [d["value"] for _, cid, d in loaded.updates if cid == bar and "value" in d]

    # Then the bar's value moves through several comm_msg updates up to 1
    assert loaded.wait_for(lambda: 1.0 in values(), 30), values()
    distinct = sorted(set(values()))
    assert len([v for v in distinct if 0 < v < 1]) >= 2, distinct
    assert loaded.wait_for(lambda: loaded.widgets[bar].get("bar_style") == "success", 10)


def test_an_unpicklable_input_is_refused_by_name_and_nothing_is_launched(
        loaded: Kernel, rest: Rest) -> None:
    # Given a lock in the kernel, and the number of tasks on the server
    loaded.execute_ok("import threading\nlk = threading.Lock()\nn = 1")
    before = _task_count(rest)
    # When a background cell reads it
    result = loaded.execute("%%bgtask\nwith lk:\n    m = n + 1")
    # Then a UsageError names the variable and suggests the kernel executor; no traceback
    err = _usage_error(result)
    assert "%%bgtask: " in err and "'lk'" in err and "--executor kernel" in err, err
    # And nothing was created on the server
    assert _task_count(rest) == before


def test_in_narrows_the_inputs(loaded: Kernel) -> None:
    # Given an unpicklable name the cell reads only in a branch not taken
    loaded.execute_ok("import threading\nlk = threading.Lock()\nk = 5")
    # When --in leaves it out
    loaded.execute_ok("%%bgtask --in k\nif k > 100:\n    lk.acquire()\nw = k * 3")
    # Then the cell runs with just what was sent
    assert _wait_eval(loaded, "globals().get('w')", 15) == 15


def test_kernel_executor_sees_live_objects(loaded: Kernel, tmp_path: Any) -> None:
    # Given live objects that cannot be pickled: a lock and an open file
    path = tmp_path / "live.txt"
    loaded.execute_ok(f"import threading\nlk = threading.Lock()\nfh = open({str(path)!r}, 'w')")
    # When a kernel-executor cell uses them
    result = loaded.execute_ok("%%bgtask --executor kernel\nwith lk:\n    fh.write('from the task')\n"
                               "    fh.flush()\nsame_lock = id(lk)")
    assert not _stderr(result)
    # Then it ran here, on these very objects
    assert _wait_eval(loaded, "globals().get('same_lock') == id(lk)", True) is True
    assert path.read_text() == "from the task"


def test_a_failure_shows_the_remote_traceback(loaded: Kernel) -> None:
    # When a background cell raises
    loaded.execute_ok("%%bgtask broken\ndef inner():\n    return 1 / 0\nresult = inner()")
    # Then the widget shows the error and the traceback through the user's function
    assert loaded.wait_for(lambda: "ZeroDivisionError" in _html_values(loaded), 30)
    shown = _html_values(loaded)
    assert "inner" in shown and "division by zero" in shown
    assert loaded.eval("'result' in globals()") is False


def test_braces_and_dollars_in_the_line_reach_the_task_as_typed(loaded: Kernel) -> None:
    # When the expression holds a set literal, a format string and a dollar (IPython expands
    # {...} and $x in a magic's line unless the magic says not to, as %timeit does)
    loaded.execute_ok("x = 5")
    loaded.execute_ok("h = %bgtask --no-widget (type({1, 2}).__name__, '{0}-{1}'.format('a', 'b'), '$x')")
    # Then the task ran what was typed: a set, the format, a literal "$x"
    assert loaded.eval("h.result(timeout=30)") == ["set", "a-b", "$x"]


def test_line_magic_binds_the_handle_to_underscore(loaded: Kernel, rest: Rest) -> None:
    # When one expression runs in the background, with a scope
    loaded.execute_ok("%bgtask --scope kernel sum(range(10))")
    # Then `_` is its handle, and its result is the expression's value
    assert loaded.eval("_.result(timeout=30)") == 45
    task_id = loaded.eval("_.id")
    task = rest("GET", f"tasks/{task_id}").json()
    assert task["scope"] == "kernel" and task["name"] == "sum(range(10))"
    assert task["origin"]["kernel_id"] == loaded.id


@pytest.mark.parametrize(("line", "says"), [
    ("%%bgtask --bogus\nx = 1", "unrecognized arguments: --bogus"),
    ("%%bgtask --executor nowhere\nx = 1", "invalid choice"),
    ("%%bgtask --timeout soon\nx = 1", "invalid float value"),
    ("%%bgtask --in 'a b'\nx = 1", "not a variable name"),
    ("%%bgtask --in nothere\nx = 1", "--in nothere: no such variable"),
    ("%%bgtask\nx = (", "not valid Python"),
    ("%%bgtask\ny = 1\nx = (", "(line 3)"),  # numbered as the notebook shows it
    ("%%bgtask\nreturn 5", "'return' outside function"),
    ("%%bgtask\nyield 5", "'yield' outside function"),
    ("%%bgtask\nimport asyncio\nawait asyncio.sleep(0)", "'await' outside function"),
    ("%bgtask 1 +", "the expression is not valid Python"),
    ("%%bgtask --executor dask\nx = 1", "dask_scheduler"),  # this server has no Dask cluster
    ("%bgtask", "give an expression"),
    ("%bgtasks frob", "invalid choice"),
    ("%bgtasks attach", "attach needs a task id"),
])
def test_bad_options_raise_a_usage_error(loaded: Kernel, rest: Rest, line: str, says: str) -> None:
    before = _task_count(rest)
    # When a magic is misused
    result = loaded.execute(line)
    # Then the cell fails with a one-line UsageError, no traceback and no task
    assert says in _usage_error(result)
    assert _task_count(rest) == before


@pytest.mark.parametrize("line", ["%%bgtask --help\nx = 1", "%bgtask --help", "%bgtasks --help",
                                  "%%bgtask -h\npass"])
def test_help(loaded: Kernel, line: str) -> None:
    result = loaded.execute_ok(line)
    assert "--executor" in result.text or "--all" in result.text
    assert not _stderr(result)


def test_bgtasks_table_and_attach(loaded: Kernel) -> None:
    # Given a task launched from this kernel
    loaded.execute_ok("%bgtask --no-widget sum(range(3))")
    task_id = loaded.eval("_.id")
    # When %bgtasks runs / Then a table with a row for it is shown
    loaded.execute_ok("%bgtasks")
    assert loaded.wait_for(lambda: task_id[:8] in _html_values(loaded), 10)
    # And `%bgtasks attach ID` re-shows its widget and binds `_` to its handle
    bars = len(loaded.widgets_of("FloatProgressModel"))
    loaded.execute_ok(f"%bgtasks attach {task_id}")
    assert len(loaded.widgets_of("FloatProgressModel")) > bars
    assert loaded.eval("_.result(timeout=30)") == 3


def test_kernel_executor_runs_ipython_syntax(loaded: Kernel) -> None:
    # When a kernel-executor cell uses IPython syntax (a shell capture)
    result = loaded.execute_ok("%%bgtask --executor kernel\nechoed = !echo from-the-shell")
    # Then it runs (only this executor has IPython at hand) and its output lands here
    assert not _stderr(result)
    assert _wait_eval(loaded, "list(globals().get('echoed') or [])", ["from-the-shell"]) == ["from-the-shell"]


def test_out_naming_a_variable_the_cell_never_assigns_is_said(loaded: Kernel) -> None:
    # When --out names a variable the cell does not assign
    loaded.execute_ok("%%bgtask --out y,a\ny = 1")
    # Then the widget says so beside what was set
    assert loaded.wait_for(lambda: "--out a: not assigned by the cell" in _html_values(loaded), 30), \
        _html_values(loaded)
    assert "outputs set: y" in _html_values(loaded)
    assert loaded.eval("y") == 1
