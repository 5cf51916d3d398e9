"""Schedules from a notebook: ``%%bgtask --every/--cron``, ``bgtasks_ext.schedule`` and
``%bgtasks schedules``, in a real kernel started by a real server whose scheduler fires
real ``code`` runs in worker processes (fixtures in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.kernel.conftest import ExecResult, Kernel, widget_text

Rest = Callable[..., requests.Response]


@pytest.fixture
def loaded(kernel: Kernel, rest: Rest) -> Iterator[Kernel]:
    kernel.execute_ok("%load_ext bgtasks_ext")
    try:
        yield kernel
    finally:  # no schedule keeps firing on the shared server after its test
        for schedule in rest("GET", "schedules").json()["schedules"]:
            rest("DELETE", f"schedules/{schedule['id']}")


def _runs(rest: Rest, schedule_id: str) -> list[dict[str, Any]]:
    reply = rest("GET", "tasks", params={"schedule_id": schedule_id, "limit": 1000})
    assert reply.status_code == 200, reply.text
    tasks: list[dict[str, Any]] = reply.json()["tasks"]
    return tasks


def _finished(rest: Rest, schedule_id: str) -> list[dict[str, Any]]:
    return [t for t in _runs(rest, schedule_id) if t["state"] == "finished"]


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _usage_error(result: ExecResult) -> str:
    assert result.reply is not None and result.reply["status"] == "error", result.reply
    assert result.reply["ename"] == "UsageError", result.reply
    err = "".join(o["text"] for o in result.outputs if o.get("name") == "stderr")
    assert err.startswith("UsageError: ") and err.count("\n") == 1, err
    return err


def _buttons(kernel: Kernel, description: str) -> list[str]:
    return [cid for cid in kernel.widgets_of("ButtonModel")
            if kernel.widgets[cid].get("description") == description]


def test_an_every_cell_runs_in_a_worker_with_its_inputs_as_they_were(loaded: Kernel, rest: Rest) -> None:
    # Given a variable in the kernel and a %%bgtask --every cell that reads it
    loaded.execute_ok("x = 21")
    loaded.execute_ok("%%bgtask doubler --every 0.5\nimport os\ny = x * 2\nf'{y} {os.getpid()}'")
    schedule_id = loaded.eval("_.id")
    schedule = rest("GET", f"schedules/{schedule_id}").json()
    assert schedule["every"] == 0.5 and schedule["name"] == "doubler" and schedule["kind"] == "code"
    assert schedule["origin"]["kernel_id"] == loaded.id
    # When the first run has finished and the variable then changes in the kernel
    assert _wait(lambda: len(_finished(rest, schedule_id)) >= 1), _runs(rest, schedule_id)
    loaded.execute_ok("x = 1000")
    seen = {t["id"] for t in _runs(rest, schedule_id)}
    # Then later runs still compute with the frozen x = 21, in a worker process
    assert _wait(lambda: len([t for t in _finished(rest, schedule_id) if t["id"] not in seen]) >= 2)
    kernel_pid = loaded.eval("__import__('os').getpid()")
    for run in _finished(rest, schedule_id):
        value, pid = run["result_preview"]["value"].split()
        assert value == "42" and int(pid) != kernel_pid
        assert run["schedule_id"] == schedule_id and run["scheduled_for"]
    # And no run's outputs land in the namespace
    loaded.drain(0.5)
    assert loaded.eval("'y' in globals()") is False
    assert loaded.eval("x") == 1000


def test_the_widget_shows_next_fire_times_and_its_disable_button_stops_runs(
        loaded: Kernel, rest: Rest) -> None:
    # Given a schedule made from a cell, with its widget under it
    loaded.execute_ok("%%bgtask ticker --every 0.5\nz = 1")
    schedule_id = loaded.eval("_.id")
    assert loaded.wait_for(lambda: "next " in widget_text(loaded), 10), widget_text(loaded)
    text = widget_text(loaded)
    assert "every 0.5 s" in text and schedule_id in text
    assert text.count(" · ") >= 2  # several fire times
    assert "not set in this notebook" in text and f"schedule_id={schedule_id}" in text
    # And its runs show on it as they finish
    assert loaded.wait_for(lambda: "finished" in widget_text(loaded), 20), widget_text(loaded)
    (disable,) = _buttons(loaded, "Disable")
    # When its Disable button is clicked
    loaded.click(disable)
    # Then the schedule is disabled on the server and the button offers Enable
    assert _wait(lambda: rest("GET", f"schedules/{schedule_id}").json()["enabled"] is False, 10)
    assert loaded.wait_for(lambda: loaded.widgets[disable].get("description") == "Enable", 10)
    assert loaded.wait_for(lambda: "disabled" in widget_text(loaded), 10)
    # And no run starts any more
    loaded.drain(0.3)
    count = len(_runs(rest, schedule_id))
    loaded.drain(1.5)
    assert len(_runs(rest, schedule_id)) == count
    # And Enable starts it again
    loaded.click(disable)
    assert _wait(lambda: len(_runs(rest, schedule_id)) > count, 10)
    # And the widget's callbacks in the events thread raised nothing
    errors = loaded.eval("[e for e in __import__('bgtasks_ext.kernel.client', fromlist=['x'])"
                         ".get_client().events.errors if 'chedule' in e]")
    assert errors == []


def test_schedule_calls_a_function_with_its_arguments(loaded: Kernel, rest: Rest) -> None:
    # Given a function defined in the notebook
    loaded.execute_ok("import bgtasks_ext\ndef add(a, b):\n    return a + b")
    # When it is scheduled with arguments
    loaded.execute_ok("h = bgtasks_ext.schedule(add, 2, b=3, every=0.5, name='adder')")
    schedule_id = loaded.eval("h.id")
    # Then its runs return its value
    assert _wait(lambda: len(_finished(rest, schedule_id)) >= 2)
    assert {t["result_preview"]["value"] for t in _finished(rest, schedule_id)} == {5}
    assert loaded.eval("h.enabled") is True
    assert loaded.eval("[type(t).__name__ for t in h.next_runs][:1]") == ["datetime"]
    assert loaded.eval("h.runs()[0]['schedule_id']") == schedule_id
    assert loaded.eval("bgtasks_ext.attach(h.runs(limit=1)[0]['id']).result()") == 5
    # And disable/enable/delete reach the server
    loaded.execute_ok("h.disable()")
    assert rest("GET", f"schedules/{schedule_id}").json()["enabled"] is False
    assert loaded.eval("h.enabled") is False and loaded.eval("h.next_runs") == []
    loaded.execute_ok("h.delete()")
    assert rest("GET", f"schedules/{schedule_id}").status_code == 404
    assert loaded.eval("repr(h)").endswith("deleted>")


def test_schedule_refuses_a_kernel_executor_and_bad_values_by_field(loaded: Kernel, rest: Rest) -> None:
    loaded.execute_ok("import bgtasks_ext")
    result = loaded.execute("bgtasks_ext.schedule(print, every=1, executor='kernel')")
    assert result.error is not None and "executor" in result.error["evalue"]
    result = loaded.execute("bgtasks_ext.schedule(print, every=1, cron='* * * * *')")
    assert result.error is not None and result.error["ename"] == "ServerError"
    assert result.error["evalue"].startswith("every:")
    assert rest("GET", "schedules").json()["schedules"] == []


@pytest.mark.parametrize(("options", "says"), [
    ("--every 5 --cron '* * * * *'", "--every and --cron: give one of them"),
    ("--cron 'x'", "--cron: 'x' must have five fields"),
    ("--cron '61 * * * *'", "--cron: '61 * * * *'"),
    ("--cron '0 9 * * *' --tz Mars/Olympus", "--tz: unknown time zone 'Mars/Olympus'"),
    ("--every 0.01", "--every: must be at least 0.1 seconds"),
    ("--every soon", "argument --every: invalid float value"),
    ("--every 5 --timeout 0", "--timeout: "),
    ("--every 5 --executor kernel", "--executor kernel: not with --every/--cron"),
    ("--every 5 --key k", "--key: not with --every/--cron"),
    ("--every 5 --scope kernel", "--scope kernel: not with --every/--cron"),
    ("--every 5 --tz Europe/Berlin", "--tz: goes with --cron"),
])
def test_bad_schedule_options_are_usage_errors_naming_the_option(
        loaded: Kernel, rest: Rest, options: str, says: str) -> None:
    tasks = len(rest("GET", "tasks", params={"limit": 1000}).json()["tasks"])
    # When a %%bgtask cell asks for a schedule with a bad option
    result = loaded.execute(f"%%bgtask {options}\nx = 1")
    # Then the cell fails with one line naming the option, and nothing is created
    assert says in _usage_error(result)
    assert rest("GET", "schedules").json()["schedules"] == []
    assert len(rest("GET", "tasks", params={"limit": 1000}).json()["tasks"]) == tasks


def test_a_cron_cell_and_the_schedules_table(loaded: Kernel, rest: Rest) -> None:
    # Given a cron schedule made from a cell
    loaded.execute_ok("%%bgtask morning report --cron '0 9 * * 1-5' --tz Europe/Berlin\nr = 1")
    schedule_id = loaded.eval("_.id")
    schedule = rest("GET", f"schedules/{schedule_id}").json()
    assert (schedule["cron"], schedule["timezone"]) == ("0 9 * * 1-5", "Europe/Berlin")
    assert len(schedule["next_runs"]) == 5
    assert "cron 0 9 * * 1-5 (Europe/Berlin)" in widget_text(loaded)
    # When %bgtasks schedules runs
    buttons = len(loaded.widgets_of("ButtonModel"))
    loaded.execute_ok("%bgtasks schedules")
    # Then a table shows it with its trigger and an Enable/Disable button
    assert loaded.wait_for(lambda: "morning report" in widget_text(loaded)
                           and len(loaded.widgets_of("ButtonModel")) > buttons, 10)
    # And a schedule made meanwhile (here over REST) appears in it live
    rest("PATCH", f"schedules/{schedule_id}", json={"name": "renamed report"})
    assert loaded.wait_for(lambda: "renamed report" in widget_text(loaded), 10)


def test_rerunning_an_every_cell_disables_the_schedule_it_made_before(loaded: Kernel, rest: Rest) -> None:
    # Given a %%bgtask --every cell run once
    loaded.execute_ok("%%bgtask --every 60\nw = 1", cell_id="cell-a")
    first = loaded.eval("_.id")
    # When the same cell runs again
    loaded.execute_ok("%%bgtask --every 60\nw = 2", cell_id="cell-a")
    second = loaded.eval("_.id")
    # Then only the new schedule stays enabled
    assert first != second
    assert rest("GET", f"schedules/{first}").json()["enabled"] is False
    assert rest("GET", f"schedules/{second}").json()["enabled"] is True
    assert f"Replaces schedule {first}" in widget_text(loaded)


def test_the_line_magic_schedules_an_expression(loaded: Kernel, rest: Rest) -> None:
    # Given a function in the notebook
    loaded.execute_ok("def area(w, h):\n    return w * h\nside = 4")
    # When one expression is scheduled with the line magic
    loaded.execute_ok("h = %bgtask --every 0.5 --no-widget area(side, 5)")
    schedule_id = loaded.eval("h.id")
    assert loaded.eval("_.id") == schedule_id
    # Then its runs' results are the expression's value, with the input as it was
    loaded.execute_ok("side = 100")
    assert _wait(lambda: len(_finished(rest, schedule_id)) >= 2)
    assert {t["result_preview"]["value"] for t in _finished(rest, schedule_id)} == {20}
    assert rest("GET", f"schedules/{schedule_id}").json()["name"] == "area(side, 5)"


def test_an_every_cell_reading_an_unpicklable_input_is_refused_by_name(loaded: Kernel, rest: Rest) -> None:
    # Given a lock in the kernel
    loaded.execute_ok("import threading\nlk2 = threading.Lock()")
    before = len(rest("GET", "schedules").json()["schedules"])
    # When a scheduled cell reads it
    result = loaded.execute("%%bgtask --every 60\nwith lk2:\n    pass")
    # Then the cell fails naming the variable, and no schedule was made
    assert result.reply is not None and result.reply["status"] == "error", result.reply
    assert "'lk2'" in result.text + (result.error_text or ""), result.text
    assert len(rest("GET", "schedules").json()["schedules"]) == before
