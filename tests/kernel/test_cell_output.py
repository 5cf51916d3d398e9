"""What a %%bgtask cell's output carries, in a real kernel started by a real server.

JupyterLab (with the extension) renders the task's own mime type live from the server;
other front ends render the kernel-side widget; text front ends (nbconvert) a line. The
kernel-side facts the browser cannot see (outputs set, superseded) reach it through the
task's ``note`` on the server.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import pytest
import requests

from tests.kernel.conftest import Kernel

Rest = Callable[..., requests.Response]
TASK_MIME = "application/vnd.bgtasks.task+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


def _bundles(result: Any) -> list[dict[str, Any]]:
    return [o["data"] for o in result.outputs if "data" in o and TASK_MIME in o["data"]]


def _wait_note(rest: Rest, task_id: str, predicate: Callable[[str], bool], timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    note = ""
    while time.monotonic() < deadline:
        note = rest("GET", f"tasks/{task_id}").json().get("note") or ""
        if predicate(note):
            return note
        time.sleep(0.1)
    return note


def test_a_cell_output_carries_the_task_the_widget_and_a_line(loaded: Kernel, rest: Rest) -> None:
    # When a %%bgtask cell runs
    result = loaded.execute_ok("%%bgtask squares\nimport time\ntime.sleep(0.5)\nsq = [i * i for i in range(5)]")
    task_id = loaded.eval("_.id")
    # Then its one output holds the task's id (for the browser's live view), the kernel
    # widget (for front ends without the extension), and a line of text
    [data] = _bundles(result)
    assert data[TASK_MIME] == {"version": 1, "task_id": task_id, "name": "squares",
                               "sending": 0, "note": None}
    assert data[WIDGET_MIME]["model_id"] in loaded.widgets
    assert task_id in data["text/plain"] and "squares" in data["text/plain"]
    assert rest("GET", f"tasks/{task_id}").status_code == 200


def test_the_outputs_set_note_reaches_the_server(loaded: Kernel, rest: Rest) -> None:
    # Given a %%bgtask cell that assigns two names
    loaded.execute_ok("%%bgtask\nalpha = 1\nbeta = 2")
    task_id = loaded.eval("_.id")
    # When it ends and its outputs land in the kernel (at the next cell boundary)
    deadline = time.monotonic() + 30
    while rest("GET", f"tasks/{task_id}").json()["state"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    loaded.execute_ok("pass")
    assert loaded.eval("[alpha, beta]") == [1, 2]
    # Then the task's record on the server says what the kernel did with them
    note = _wait_note(rest, task_id, lambda n: "outputs set" in n)
    assert note == "outputs set: alpha, beta"


def test_a_rerun_cell_notes_both_tasks(loaded: Kernel, rest: Rest) -> None:
    cell = f"cell-{uuid.uuid4()}"
    loaded.execute_ok("%%bgtask\nimport time\ntime.sleep(5)\nv = 1", cell_id=cell)
    first = loaded.eval("_.id")
    result = loaded.execute_ok("%%bgtask\nv = 2", cell_id=cell)
    second = loaded.eval("_.id")
    # The new output says at once which task it replaced; the server keeps both notes
    [data] = _bundles(result)
    assert data[TASK_MIME]["note"] == f"superseded task {first}"
    assert _wait_note(rest, second, lambda n: n.startswith(f"superseded task {first}")).startswith(
        f"superseded task {first}")
    assert "superseded by a re-run" in _wait_note(rest, first, lambda n: "superseded" in n)


def test_big_inputs_show_the_reserved_id_at_once(loaded: Kernel, rest: Rest) -> None:
    # Given 64 MB of inputs (sent by a thread, after the cell has returned; sending and
    # storing them takes the server about a second, the display a few ms)
    loaded.execute_ok("import os; blob = os.urandom(64 << 20)")
    result = loaded.execute_ok("%%bgtask big\nsize = len(blob)")
    # Then the output already names the task that the inputs will become
    [data] = _bundles(result)
    shown = data[TASK_MIME]
    assert shown["sending"] > 64 << 20
    assert loaded.eval("_.id") == shown["task_id"]  # once sent, the same id
    deadline = time.monotonic() + 30
    while rest("GET", f"tasks/{shown['task_id']}").json()["state"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_attach_output_carries_the_task(loaded: Kernel, rest: Rest) -> None:
    task = rest("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0.1}}).json()
    result = loaded.execute_ok(f"%bgtasks attach {task['id']}")
    [data] = _bundles(result)
    assert data[TASK_MIME]["task_id"] == task["id"]


def test_no_widget_shows_nothing(loaded: Kernel) -> None:
    result = loaded.execute_ok("%%bgtask --no-widget\nx = 1")
    assert _bundles(result) == []
