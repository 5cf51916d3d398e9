"""A failed attempt's traceback: the task's frames only, notebook cells named as IPython does.

Pure: ``run_attempt`` as every executor calls it (thread, worker, kernel), and the
``code`` kind with jobs shaped as a kernel sends them, shipped through cloudpickle as a
worker receives them. The real kernel and worker are in tests/kernel/test_tracebacks.py.
"""

from __future__ import annotations

import re

import cloudpickle

from bgtasks_ext.core.attempt import run_attempt, run_kind
from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.ports import OutcomeStatus
from bgtasks_ext.core.tracebacks import code_key
from bgtasks_ext.kinds.code import CellSource, CodeJob

FRAME = re.compile(r'^  File "([^"]*)", line (\d+), in (\S+)\n(?:    (.*)\n)?', re.M)


class Sink:
    def progress(self, *a: object) -> None: ...

    def log(self, text: str) -> None: ...


def frames(traceback: str) -> list[tuple[str, int, str, str]]:
    return [(m[1], int(m[2]), m[3], (m[4] or "").strip()) for m in FRAME.finditer(traceback)]


def fail(job: CodeJob) -> str:
    """Run ``job`` as a worker does (the pickled payload, the code kind) and return the
    failed attempt's traceback."""
    ctx = TaskContext("t", Sink(), payload=cloudpickle.dumps(job))
    outcome = run_attempt(ctx, run_kind, "bgtasks_ext.kinds.code:code", ctx)
    assert outcome.status is OutcomeStatus.FAILED and outcome.error is not None
    return outcome.error.traceback


def test_a_kind_s_traceback_starts_in_the_kind() -> None:
    # When a kind raises in the runner every executor uses
    ctx = TaskContext("t", Sink())
    outcome = run_attempt(ctx, run_kind, "tests.core.kinds_for_tests:boom", ctx)
    # Then its first frame is the kind's own: none of the runner or the kind registry
    assert outcome.error is not None
    shown = frames(outcome.error.traceback)
    assert shown[0][2:] == ("boom", 'raise ValueError("boom from the task")'), outcome.error.traceback
    assert all("bgtasks_ext" not in f[0] for f in shown), outcome.error.traceback


def test_a_cell_is_numbered_from_where_it_starts_in_its_cell() -> None:
    # Given a %%bgtask cell's body, which starts on the cell's second line
    job = CodeJob(source="x = 1\nraise ValueError('boom')\n", filename="Cell In[7]", first_line=2)
    # When it fails
    text = fail(job)
    # Then the one frame is the cell's, on the line the notebook shows
    assert frames(text) == [("Cell In[7]", 3, "<module>", "raise ValueError('boom')")], text


def test_an_expression_points_at_its_column() -> None:
    # Given `%bgtask 1 / 0` on the second line of cell 4, as the kernel describes it
    cell = CellSource("Cell In[4]", ["a = 1\n", "h = %bgtask 1 / 0\n"])
    job = CodeJob(source="1 / 0", filename="Cell In[4]", first_line=2, first_column=12,
                  cells={"/tmp/ipykernel_1/4.py": cell})
    # When it fails
    text = fail(job)
    # Then the line is the magic's, and the carets are under the expression
    assert frames(text) == [("Cell In[4]", 2, "<module>", "h = %bgtask 1 / 0")], text
    assert "    h = %bgtask 1 / 0\n                ~~^~~\n" in text, text


def test_a_shipped_function_is_named_by_its_cell() -> None:
    # Given a function compiled as IPython compiles cell 3 (without its two leading blank lines)
    filename = "/tmp/ipykernel_1/3.py"
    ns: dict[str, object] = {}
    exec(compile("def parse(text):\n    return int(text)\n", filename, "exec"), ns)  # noqa: S102
    parse = ns["parse"]
    cell = CellSource("Cell In[3]", ["\n", "\n", "def parse(text):\n", "    return int(text)\n"],
                      offset=2, codes=[code_key(parse.__code__)])  # type: ignore[attr-defined]
    # When a worker runs it (cloudpickle drops its file name on the way) and it fails
    text = fail(CodeJob(mode="call", fn=parse, args=("x",), cells={filename: cell}))
    # Then its frame is the cell's, numbered and shown as the notebook shows it
    assert frames(text) == [("Cell In[3]", 4, "parse", "return int(text)")], text
    assert text.rstrip().endswith("ValueError: invalid literal for int() with base 10: 'x'")


def test_a_chained_exception_is_named_too() -> None:
    # Given a cell that fails while handling another failure
    job = CodeJob(source="try:\n    {}['k']\nexcept KeyError:\n    raise RuntimeError('no k')\n",
                  filename="Cell In[9]", first_line=2)
    # When it fails
    text = fail(job)
    # Then both tracebacks show the cell's lines
    assert frames(text) == [("Cell In[9]", 3, "<module>", "{}['k']"),
                            ("Cell In[9]", 5, "<module>", "raise RuntimeError('no k')")], text
