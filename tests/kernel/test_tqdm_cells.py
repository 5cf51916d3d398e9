"""A notebook user's tqdm loop in a ``%%bgtask`` cell, in a real kernel started by a real
server: the task's widget moves with the bar, and the log keeps the bar's last frame
(issue 10 item 6). The worker case is also covered server-side (tests/server/test_tqdm.py);
here the ``kernel`` executor, where ``tqdm.auto`` gives tqdm's notebook widget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.kernel.conftest import Kernel

Rest = Callable[..., requests.Response]

import tqdm  # noqa: F401,E402 - a test extra: missing, this fails, never skips


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


def _task_named(rest: Rest, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in rest("GET", "tasks", params={"limit": 50}).json()["tasks"]:
            if task["name"] == name:
                return task  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no task named {name}")


@pytest.mark.parametrize("executor", ["process", "kernel"])
def test_a_tqdm_auto_loop_in_a_cell_drives_the_tasks_widget(loaded: Kernel, rest: Rest, executor: str) -> None:
    # Given a notebook user's existing tqdm.auto loop, run as a background cell
    name = f"tqdm-{executor}"
    result = loaded.execute_ok(
        f"%%bgtask {name} --executor {executor}\n"
        "import time\nfrom tqdm.auto import tqdm\n"
        "for row in tqdm(range(30), desc='rows'):\n    time.sleep(0.05)\n"
        "total_rows = row + 1")
    displayed = [o for o in result.outputs if "data" in o]
    # The task's widget's progress bar (0..1); a hidden tqdm notebook bar made in the
    # kernel executor's thread may be opened after it, and counts 0..30.
    (bar,) = [cid for cid in loaded.widgets_of("FloatProgressModel")
              if loaded.widgets[cid].get("max") == 1.0]

    def values() -> list[float]:
        return [d["value"] for _, cid, d in loaded.updates if cid == bar and "value" in d]

    # When it runs / Then the task's widget moves with the bar, up to the end
    assert loaded.wait_for(lambda: 1.0 in values(), 60), values()
    assert [v for v in set(values()) if 0 < v < 1], values()
    task = _task_named(rest, name)
    deadline = time.monotonic() + 30
    while task["state"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
        task = rest("GET", f"tasks/{task['id']}").json()
    assert task["state"] == "finished", task
    assert (task["progress"]["current"], task["progress"]["total"], task["progress"]["message"]) == (
        30, 30, "rows")
    # And the cell showed only the task's widget: no tqdm widget popped up from the task
    loaded.drain(0.5)
    shown = [m for m in loaded.messages if m["header"]["msg_type"] == "display_data"]
    assert len(displayed) == 1 and len(shown) == 1, [m["content"] for m in shown]
    # And the log holds the bar's last frame, once
    text = rest("GET", f"tasks/{task['id']}/log").json()["text"]
    assert "\r" not in text and text.count("rows: 100%") == 1 and "30/30" in text, repr(text)
