"""``code``: run notebook code somewhere else (what ``%%bgtask`` and ``submit()`` send).

The kernel packs a :class:`CodeJob` with cloudpickle into the task's payload. The
server stores and forwards those bytes without ever loading them; a worker (running
the kernel's own interpreter) loads them here, runs the code and returns a
:class:`CodeResult`, which travels back pickled and is loaded only by the kernel.

:func:`run_code` is also what the ``kernel`` executor calls inside the kernel, with
the user's live namespace instead of a copy of its inputs.
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


@dataclass
class CodeResult:
    """What comes back: the value, and the output names that were bound."""

    value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def __bgtask_preview__(self) -> Any:
        return {"value": preview(self.value), "outputs": sorted(self.outputs)}


def run_code(job: CodeJob, namespace: dict[str, Any] | None = None) -> CodeResult:
    """Run ``job`` in ``namespace`` (a fresh one holding its inputs when ``None``)."""
    ns: dict[str, Any] = {"__name__": "__main__"} if namespace is None else namespace
    if namespace is None:
        ns.update(job.inputs)
    if job.mode == "call":
        if job.fn is None:
            raise ValueError("a call job needs a function")
        value = job.fn(*job.args, **job.kwargs)
    elif job.mode == "cell":
        value = _exec_cell(job.source or "", ns, job.filename)
    else:
        raise ValueError(f"unknown code job mode {job.mode!r}")
    outputs = {name: ns[name] for name in job.outputs if name in ns}
    return CodeResult(value, outputs)


def _exec_cell(source: str, ns: dict[str, Any], filename: str) -> Any:
    # Tracebacks of the cell show its lines, as they do in the kernel.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = ast.parse(source, filename, "exec")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, filename, "exec"), ns)  # noqa: S102 - running the user's own cell is the point
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), filename, "eval"), ns)  # noqa: S307


@kind("code", title="Notebook code", needs_payload=True,
      description="Run a notebook cell or function call (sent by %%bgtask and submit()).")
def code(ctx: TaskContext) -> CodeResult:
    if ctx.payload is None:
        raise ValueError("a code task needs a payload (sent by %%bgtask or bgtasks_ext.submit)")
    job = cloudpickle.loads(ctx.payload)
    if not isinstance(job, CodeJob):
        raise TypeError(f"a code task's payload must be a CodeJob, not {type(job).__name__}")
    return run_code(job)
