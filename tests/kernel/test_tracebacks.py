"""A failed task's traceback shows the user's frames, with the notebook's line numbers.

Real server, real kernel, real workers: the traceback text is what the server stored
(``error.traceback``), as the widget, the panel and ``h.result()`` show it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.kernel.conftest import Kernel

Rest = Callable[..., requests.Response]
FRAME = re.compile(r'^  File "([^"]*)", line (\d+), in (\S+)\n(?:    (.*)\n)?', re.M)


def _failed(rest: Rest, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = rest("GET", f"tasks/{task_id}").json()
        if task["state"] in ("finished", "failed", "cancelled"):
            assert task["state"] == "failed", task
            return task
        assert time.monotonic() < deadline, f"{task_id} still {task['state']}"
        time.sleep(0.05)


def _frames(traceback: str) -> list[tuple[str, int, str, str]]:
    """(file, line, function, the line's text) of every frame of the traceback."""
    return [(m[1], int(m[2]), m[3], (m[4] or "").strip()) for m in FRAME.finditer(traceback)]


def _run(kernel: Kernel, code: str) -> int:
    """Run a cell; its execution count (the ``n`` of ``In[n]``)."""
    result = kernel.execute_ok(code)
    assert result.reply is not None
    return int(result.reply["execution_count"])


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


@pytest.mark.parametrize("executor", ["process", "kernel"])
def test_a_cell_shows_its_own_line_as_the_notebook_numbers_it(loaded: Kernel, rest: Rest,
                                                              executor: str) -> None:
    # When a background cell fails on its third line (line 1 is the %%bgtask line)
    n = _run(loaded, f'%%bgtask --executor {executor}\nx = 1\nraise ValueError("boom")')
    task = _failed(rest, loaded.eval("_.id"))
    # Then the stored traceback is the cell's one frame, named as IPython names cells
    text = task["error"]["traceback"]
    assert "bgtasks_ext" not in text, text
    assert _frames(text) == [(f"Cell In[{n}]", 3, "<module>", 'raise ValueError("boom")')], text
    assert text.rstrip().endswith("ValueError: boom")


def test_a_submitted_function_shows_only_its_frames(loaded: Kernel, rest: Rest) -> None:
    # Given functions defined in two earlier cells
    first = _run(loaded, "def parse(text):\n    # the notebook's comment\n    return int(text)\n")
    second = _run(loaded, "\ndef load():\n    value = parse('x')\n    return value\n")
    # When one is submitted to a worker and fails inside the other
    loaded.execute_ok("h = __import__('bgtasks_ext').submit(load)")
    task = _failed(rest, loaded.eval("h.id"))
    # Then the traceback starts in the submitted function, with each cell's lines
    text = task["error"]["traceback"]
    assert "bgtasks_ext" not in text, text
    assert _frames(text) == [
        (f"Cell In[{second}]", 3, "load", "value = parse('x')"),
        (f"Cell In[{first}]", 3, "parse", "return int(text)"),
    ], text
    # And h.result() raises with that traceback shown below the error
    error = loaded.execute("h.result(timeout=30)").error_text
    assert "TaskFailed" in error and "invalid literal for int()" in error
    assert f'File "Cell In[{second}]", line 3, in load' in error and "value = parse('x')" in error


def test_the_line_magic_shows_the_line_it_is_on(loaded: Kernel, rest: Rest) -> None:
    # Given a function that fails
    defined = _run(loaded, "def fails():\n    raise KeyError('nope')\n")
    # When the line magic on the third line of a cell runs it
    n = _run(loaded, "a = 1\nb = 2\nh = %bgtask fails()\n")
    task = _failed(rest, loaded.eval("h.id"))
    # Then its frames are that line of this cell, then the function's
    text = task["error"]["traceback"]
    assert _frames(text) == [
        (f"Cell In[{n}]", 3, "<module>", "h = %bgtask fails()"),
        (f"Cell In[{defined}]", 2, "fails", "raise KeyError('nope')"),
    ], text


def test_a_cell_calling_a_notebook_function_shows_both(loaded: Kernel, rest: Rest) -> None:
    # Given a function from an earlier cell
    defined = _run(loaded, "def halve(v):\n    return v / 0\n")
    # When a background cell calls it on its fourth line
    n = _run(loaded, "%%bgtask halving\n# a comment\nv = 3\nhalve(v)\n")
    task = _failed(rest, loaded.eval("_.id"))
    # Then both frames show the notebook's lines
    assert _frames(task["error"]["traceback"]) == [
        (f"Cell In[{n}]", 4, "<module>", "halve(v)"),
        (f"Cell In[{defined}]", 2, "halve", "return v / 0"),
    ], task["error"]["traceback"]
