"""The task widget in a real kernel started by a real server: what its comms carry."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Callable

import pytest
import requests

from tests.kernel.conftest import Kernel

SHOW_COUNT = """
from bgtasks_ext.kernel.client import get_client
from bgtasks_ext import attach
_t = get_client().create(kind="count", params={{"times": {times}, "interval": {interval}}}, executor="thread")
h = attach(_t["id"])
h
"""


def show_count(kernel: Kernel, times: int = 20, interval: float = 0.2) -> tuple[str, str]:
    """Launch a count task in the kernel and display its widget: (task id, bar comm id)."""
    kernel.execute_ok(SHOW_COUNT.format(times=times, interval=interval))
    task_id = kernel.eval("h.id")
    bars = kernel.widgets_of("FloatProgressModel")
    assert len(bars) == 1, kernel.widgets
    return task_id, bars[0]


def cancel_button(kernel: Kernel) -> str:
    return next(cid for cid in kernel.widgets_of("ButtonModel")
                if kernel.widgets[cid].get("description") == "Cancel")


def test_progress_moves_while_the_kernel_runs_another_cell(kernel: Kernel) -> None:
    # Given a count task's widget
    _, bar = show_count(kernel, times=20, interval=0.2)
    # When the kernel is busy in another cell for 2 s
    start = time.monotonic()
    result = kernel.wait_idle(kernel.execute_async("import time; time.sleep(2)"), timeout=20)
    end = time.monotonic()
    assert result.error is None
    # Then progress updates of the bar arrived during that cell, and they increase
    values = [st["value"] for at, cid, st in kernel.updates
              if cid == bar and "value" in st and start <= at <= end]
    assert len(values) >= 3, values
    assert values == sorted(values) and values[-1] > values[0]


def test_cancel_click_cancels_on_the_server(kernel: Kernel, rest: Callable[..., requests.Response]) -> None:
    # Given a long count task's widget
    task_id, bar = show_count(kernel, times=100, interval=0.2)
    button = cancel_button(kernel)
    assert kernel.widgets[button]["disabled"] is False
    # When its Cancel button is clicked
    kernel.click(button)
    # Then the server cancels it, the widget says so and the button is disabled
    deadline = time.monotonic() + 10
    while rest("GET", f"tasks/{task_id}").json()["state"] != "cancelled":
        assert time.monotonic() < deadline, "not cancelled on the server"
        time.sleep(0.1)
    assert kernel.wait_for(lambda: kernel.widgets[button].get("disabled") is True
                           and kernel.widgets[bar].get("bar_style") == "warning", 10)


def test_finished_style_elapsed_and_log(kernel: Kernel) -> None:
    # Given a short count task whose log is opened in the widget
    _, bar = show_count(kernel, times=3, interval=0.1)
    kernel.execute_ok("h.widget.log_box.selected_index = 0")
    # When it finishes
    assert kernel.wait_for(lambda: kernel.widgets[bar].get("bar_style") == "success", 15)
    # Then the bar is full, the timing says elapsed, and the log shows its output
    assert kernel.widgets[bar]["value"] == 1.0
    labels = [st.get("value", "") for st in kernel.widgets.values() if st.get("_model_name") == "LabelModel"]
    assert any(str(v).startswith("elapsed") for v in labels), labels
    assert kernel.wait_for(lambda: any("round 3 of 3" in str(st.get("value", ""))
                                       for st in kernel.widgets.values()), 10)


def test_failed_task_shows_error_and_traceback(kernel: Kernel) -> None:
    # Given a task that fails
    kernel.execute_ok("""
from bgtasks_ext import submit
def boom():
    raise ValueError("exploded on purpose")
h = submit(boom, executor="process")
h
""")
    # Then its widget turns red and shows the error with its traceback
    bar = kernel.widgets_of("FloatProgressModel")[0]
    assert kernel.wait_for(lambda: kernel.widgets[bar].get("bar_style") == "danger", 30)

    def shows_error() -> bool:
        return any("exploded on purpose" in str(st.get("value", "")) and "Traceback" in str(st.get("value", ""))
                   for st in kernel.widgets.values())
    assert kernel.wait_for(shows_error, 10)


def test_attach_after_a_kernel_restart_shows_the_current_state(kernel: Kernel) -> None:
    # Given a running count task launched from the kernel
    task_id, _ = show_count(kernel, times=30, interval=0.2)
    # When the kernel restarts and the task is attached again
    kernel.restart()
    kernel.execute_ok(f"from bgtasks_ext import attach\nh = attach({task_id!r})\nh")
    # Then the new widget shows the task running, and it keeps moving
    bars = kernel.widgets_of("FloatProgressModel")
    assert len(bars) == 1
    bar = bars[0]
    first = kernel.widgets[bar]["value"]
    assert kernel.widgets[bar]["bar_style"] == "info"
    assert kernel.wait_for(lambda: kernel.widgets[bar]["value"] > first, 10)
    kernel.execute_ok("h.cancel()")


def test_without_a_server_the_message_is_clear(plain_kernel: Kernel) -> None:
    # Given a kernel with no BGTASKS_* environment
    # When the API is used
    result = plain_kernel.execute("from bgtasks_ext import submit\nsubmit(print, 1)")
    # Then it fails with a message saying what is missing and what to do
    assert result.error is not None
    assert result.error["ename"] == "NoServer"
    assert "no bgtasks server" in result.error["evalue"]
    assert "bgtasks_ext.connect(url, token)" in result.error["evalue"]




def test_tasks_table_lists_this_kernels_tasks_live(kernel: Kernel) -> None:
    # Given a task launched from this kernel and a table of this kernel's tasks
    kernel.execute_ok("""
from bgtasks_ext import submit
from bgtasks_ext.kernel.api import kernel_id
from bgtasks_ext.kernel.client import get_client
from bgtasks_ext.kernel.widgets import TasksTable
first = submit(abs, -1, executor="process", name="first-task")
first.wait(10)
table = TasksTable(get_client(), kernel_id=kernel_id())
table
""")
    assert kernel.wait_for(lambda: any("first-task" in str(st.get("value", ""))
                                       for st in kernel.widgets.values()), 5)
    # When another task starts from the kernel
    kernel.execute_ok("second = submit(abs, -2, executor='process', name='second-task')")
    # Then a row for it appears without re-running the table's cell
    assert kernel.wait_for(lambda: any("second-task" in str(st.get("value", ""))
                                       for st in kernel.widgets.values()), 5)


def _labels(kernel: Kernel) -> list[str]:
    return [str(st.get("value", "")) for st in kernel.widgets.values()
            if st.get("_model_name") == "LabelModel"]


def test_progress_numbers_read_as_people_write_them(kernel: Kernel) -> None:
    # Given a task reporting fractional progress (sleep: seconds slept of 60)
    kernel.execute_ok("""
from bgtasks_ext import attach
from bgtasks_ext.kernel.client import get_client
_t = get_client().create(kind="sleep", params={"seconds": 60}, executor="thread")
h = attach(_t["id"])
h
""")
    # When its progress arrives on the widget
    count = re.compile(r"^([0-9.]+) / 60$")
    assert kernel.wait_for(lambda: any(count.match(v) and float(count.match(v)[1]) > 0  # type: ignore[index]
                                       for v in _labels(kernel)), 15), _labels(kernel)
    kernel.execute_ok("h.cancel()")
    # Then the count shows at most 3 significant digits, the total without decimals
    shown = next(m[1] for v in _labels(kernel) if (m := count.match(v)))
    assert len(shown.replace(".", "").lstrip("0")) <= 3, shown


def test_big_counts_have_thousands_separators(kernel: Kernel) -> None:
    # Given a task that reports a count of rows
    kernel.execute_ok("""
from bgtasks_ext import submit
def rows():
    import time
    from bgtasks_ext import progress
    progress(1234567, total=5000000, message="rows")
    time.sleep(30)
h = submit(rows, executor="process")
h
""")
    # Then the widget shows the counts as people write them
    assert kernel.wait_for(lambda: "1,234,567 / 5,000,000 · rows" in _labels(kernel), 20), _labels(kernel)
    kernel.execute_ok("h.cancel()")


@pytest.mark.parametrize("ahead", [180.0, 3 * 3600.0])
def test_a_delayed_task_says_when_it_starts(kernel: Kernel, rest: Callable[..., requests.Response],
                                            ahead: float) -> None:
    # Given a task set to start later
    run_on = time.time() + ahead
    task = rest("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 1},
                                       "executor": "thread", "run_on": run_on}).json()
    # When its widget is shown
    kernel.execute_ok(f"from bgtasks_ext import attach\nh = attach({task['id']!r})\nh")
    # Then it says when it starts: in minutes when soon, else the local time of day
    if ahead < 3600:
        expected = "starts in 3 min"
    else:
        at = datetime.fromtimestamp(run_on)
        same_day = at.date() == datetime.now().date()
        expected = "starts " + at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
    try:
        assert kernel.wait_for(lambda: expected in _labels(kernel), 10), _labels(kernel)
    finally:
        rest("POST", f"tasks/{task['id']}/cancel")
