"""``code``: run notebook code somewhere else (what ``%%bgtask`` and ``submit()`` send).

The kernel packs a :class:`CodeJob` with cloudpickle into the task's payload. The
server stores and forwards those bytes without ever loading them; a worker (running
the kernel's own interpreter) loads them here, runs the code and returns a
:class:`CodeResult`, which travels back pickled and is loaded only by the kernel.

:func:`run_code` is also what the ``kernel`` executor calls inside the kernel, with
the user's live namespace instead of a copy of its inputs.

A failed job's traceback reads as the notebook: this module's frames are not shown
(:func:`~bgtasks_ext.core.tracebacks.runner_module`), a cell's lines are numbered from
where its code starts in the notebook's cell (``first_line``: line 2 under a
``%%bgtask`` line), and the cells the code comes from are named and shown as the kernel
sent them (``cells``).
"""

from __future__ import annotations

import ast
import linecache
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle

from ..core.context import TaskContext
from ..core.registry import kind
from ..core.results import preview
from ..core.tracebacks import CodeKey, runner_module, show_cell

runner_module(__file__)


@dataclass
class CellSource:
    """A notebook cell a job's code comes from, as the kernel knows it."""

    label: str
    """Its name as IPython shows it: ``Cell In[7]``."""
    lines: list[str]
    """Its lines as typed."""
    offset: int = 0
    """How many lines further the notebook numbers them than IPython's compiled code
    (it drops a cell's leading blank lines)."""
    codes: list[CodeKey] = field(default_factory=list)
    """:func:`~bgtasks_ext.core.tracebacks.code_key` of the functions defined in it (the
    file name does not survive cloudpickle)."""


@dataclass
class CodeJob:
    """What a kernel asks to run."""

    mode: str = "cell"
    """``cell``: exec ``source`` (the last expression's value is the result value);
    ``call``: ``fn(*args, **kwargs)``."""
    source: str | None = None
    fn: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    """Values of the names the cell reads, copied from the kernel's namespace."""
    outputs: list[str] = field(default_factory=list)
    """Names to send back when done (the cell's top-level assignments, or ``--out``)."""
    filename: str = "<bgtask>"
    """The name ``source`` is compiled under: its cell's name (``Cell In[7]``) when the
    kernel knows it."""
    first_line: int = 1
    """The line of its cell where ``source`` starts (2 for the body of a ``%%bgtask`` cell)."""
    first_column: int = 0
    """The column where ``source`` starts on that line, in UTF-8 bytes (``%bgtask EXPR``)."""
    cells: dict[str, CellSource] = field(default_factory=dict)
    """Notebook cells this job's code comes from, by IPython's file name of the cell, so
    that tracebacks show them wherever the job runs."""
    is_cell: bool = False
    """A ``%%bgtask`` cell (not a call or a ``%bgtask`` expression): its ``result()`` in
    the kernel is its outputs, not its value. Copied onto the :class:`CodeResult`, so a
    kernel that only has the task (``attach`` after a restart) knows it too."""


@dataclass
class CodeResult:
    """What comes back: the value, and the output names that were bound."""

    value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    is_cell: bool = False
    """Came from a ``%%bgtask`` cell (see :attr:`CodeJob.is_cell`)."""

    def __bgtask_preview__(self) -> Any:
        return {"value": preview(self.value), "outputs": sorted(self.outputs)}


def run_code(job: CodeJob, namespace: dict[str, Any] | None = None) -> CodeResult:
    """Run ``job`` in ``namespace`` (a fresh one holding its inputs when ``None``)."""
    ns: dict[str, Any] = {"__name__": "__main__"} if namespace is None else namespace
    if namespace is None:
        ns.update(job.inputs)
    cells = getattr(job, "cells", None) or {}  # absent from jobs pickled by older versions
    for filename, cell in cells.items():
        show_cell(cell.label, cell.lines, cell.offset, filename, cell.codes)
    if job.mode == "call":
        if job.fn is None:
            raise ValueError("a call job needs a function")
        value = job.fn(*job.args, **job.kwargs)
    elif job.mode == "cell":
        shown = any(cell.label == job.filename for cell in cells.values())
        value = _exec_cell(job, ns, shown)
    else:
        raise ValueError(f"unknown code job mode {job.mode!r}")
    outputs = {name: ns[name] for name in job.outputs if name in ns}
    # getattr: jobs pickled by older versions have no is_cell
    return CodeResult(value, outputs, is_cell=getattr(job, "is_cell", False))


def _exec_cell(job: CodeJob, ns: dict[str, Any], shown: bool) -> Any:
    source, filename = job.source or "", job.filename
    line, column = getattr(job, "first_line", 1), getattr(job, "first_column", 0)
    if not shown:  # the kernel sent no lines of its cell: show the source's own
        lines = [""] * (line - 1) + source.splitlines(True)
        linecache.cache[filename] = (len(source), None, lines, filename)
    tree = ast.parse(source, filename, "exec")
    _place(tree, line, column)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, filename, "exec"), ns)  # noqa: S102 - running the user's own cell is the point
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), filename, "eval"), ns)  # noqa: S307


def _place(tree: ast.AST, line: int, column: int) -> None:
    """Number ``tree`` as its cell does: from ``line``, and from ``column`` on its first
    line (so that the carets under a failed expression point at it)."""
    if column:
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) != 1:
                continue
            node.col_offset += column  # type: ignore[attr-defined]
            if getattr(node, "end_lineno", None) == 1 and getattr(node, "end_col_offset", None) is not None:
                node.end_col_offset += column  # type: ignore[attr-defined]
    if line > 1:
        ast.increment_lineno(tree, line - 1)


@kind("code", title="Notebook code", needs_payload=True,
      description="Run a notebook cell or function call (sent by %%bgtask and submit()).")
def code(ctx: TaskContext) -> CodeResult:
    if ctx.payload is None:
        raise ValueError("a code task needs a payload (sent by %%bgtask or bgtasks_ext.submit)")
    job = cloudpickle.loads(ctx.payload)
    if not isinstance(job, CodeJob):
        raise TypeError(f"a code task's payload must be a CodeJob, not {type(job).__name__}")
    return run_code(job)
