"""Where a job's code is in the notebook: cell names and lines for its tracebacks.

A task's code runs in a worker that has never seen the notebook: the cells it comes
from exist there only as IPython's file names (a temporary path per cell), and their
lines only in this kernel's ``linecache``. So before a job leaves, :func:`locate` notes

- where the launching code sits: the ``%%bgtask`` cell's body starts on the line after
  the magic's, ``%bgtask EXPR`` on the magic's own line and column; the job is compiled
  under the cell's name (``Cell In[7]``), so line numbers are the notebook's;
- the cells the job's functions were defined in (found by walking from the function,
  its arguments and inputs through code objects, closures and the globals they name),
  each with its name, its lines as typed (IPython compiles a cell without its leading
  blank lines: the offset puts the numbers back) and the keys of its functions' code
  (cloudpickle ships code without its file name).

The worker hands them to :func:`bgtasks_ext.core.tracebacks.show_cell` (in
:func:`bgtasks_ext.kinds.code.run_code`). Everything here is best effort: a job that
cannot be located runs the same, with plainer tracebacks.
"""

from __future__ import annotations

import functools
import linecache
import sys
import types
from collections.abc import Mapping
from typing import Any

from ..core.tracebacks import code_key
from ..kinds.code import CellSource, CodeJob

WALK_BUDGET = 2000
"""Objects looked at per job at most (a launch must stay fast whatever the namespace)."""

class _Cells:
    """The cells IPython compiled in this kernel: their names and lines as typed."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.compiler = shell.compile
        self.found: dict[str, CellSource | None] = {}

    def get(self, filename: str) -> CellSource | None:
        if filename not in self.found:
            self.found[filename] = self._make(filename)
        return self.found[filename]

    def _make(self, filename: str) -> CellSource | None:
        names = self.compiler.format_code_name(filename)
        if not names:
            return None
        label = " ".join(names)
        compiled = linecache.getlines(filename)  # IPython's cache of the compiled cell
        raw = self._raw(filename)
        if raw is None:
            return CellSource(label, compiled)
        lines = raw.splitlines(True)
        offset = 0
        while offset < len(lines) and not lines[offset].strip():
            offset += 1
        if offset == len(lines):
            offset = 0
        return CellSource(label, lines, offset)

    def _raw(self, filename: str) -> str | None:
        """The cell as typed (IPython keeps it in its history, by execution count)."""
        number = getattr(self.compiler, "_filename_map", {}).get(filename)
        history = getattr(getattr(self.shell, "history_manager", None), "input_hist_raw", None)
        if not isinstance(number, int) or not history or not 0 < number < len(history):
            return None
        raw = history[number]
        return raw if isinstance(raw, str) else None


def locate(job: CodeJob, shell: Any = None) -> CodeJob:
    """Fill ``job``'s ``filename``, ``first_line``, ``first_column`` and ``cells`` from the
    notebook cell running now (the caller's) and the cells its code comes from."""
    try:
        if shell is None:
            from IPython import get_ipython

            shell = get_ipython()
        if shell is None or not hasattr(getattr(shell, "compile", None), "format_code_name"):
            return job
        cells = _Cells(shell)
        ns = shell.user_ns
        if job.mode == "cell":
            _place(job, cells)
        roots: list[tuple[Any, Mapping[str, Any]]] = [(job.fn, ns)] if job.fn is not None else []
        roots += [(value, ns) for value in (*job.args, *job.kwargs.values(), *job.inputs.values())]
        if job.mode == "cell" and job.source:
            try:
                roots.append((compile(job.source, job.filename, "exec"), ns))
            except (SyntaxError, ValueError):
                pass
        for code in _cell_code(roots, cells):
            cell = cells.get(code.co_filename)
            if cell is not None:
                job.cells[code.co_filename] = cell
                cell.codes.append(code_key(code))
    except Exception:  # noqa: S110 - only tracebacks get plainer; the job still runs
        pass
    return job


def _place(job: CodeJob, cells: _Cells) -> None:
    """Where the cell job's source starts: the frame of the notebook cell up the stack
    runs the magic on some line of that cell."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and cells.get(frame.f_code.co_filename) is None:
        frame = frame.f_back
    if frame is None:
        return
    filename = frame.f_code.co_filename
    cell = cells.get(filename)
    assert cell is not None
    lines, offset = cell.lines, cell.offset
    job.cells[filename] = cell
    job.filename = cell.label
    lineno = frame.f_lineno + offset
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    source = job.source or ""
    if line.lstrip().startswith("%%"):  # the cell magic: its body is the lines below
        body = lines[lineno:]
        first = source.splitlines()[:1]
        skipped = 0
        if body and first != [body[0].rstrip("\r\n")]:  # blank lines dropped in transforming
            while skipped < len(body) and not body[skipped].strip():
                skipped += 1
        job.first_line = lineno + 1 + skipped
    else:  # a line magic: the expression is on this line
        job.first_line = lineno
        column = line.find(source.strip()) if source.strip() else -1
        if column > 0:
            job.first_column = len(line[:column].encode())


def _cell_code(roots: list[tuple[Any, Mapping[str, Any]]], cells: _Cells) -> list[types.CodeType]:
    """Code compiled from notebook cells that the roots can run: functions, methods,
    classes defined in the notebook, the code and globals they reach."""
    found: list[types.CodeType] = []
    seen: set[int] = set()
    todo = list(roots)
    budget = WALK_BUDGET
    while todo and budget > 0:
        obj, ns = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        budget -= 1
        if isinstance(obj, types.CodeType):
            if cells.get(obj.co_filename) is not None:
                found.append(obj)
            todo += [(c, ns) for c in obj.co_consts if isinstance(c, types.CodeType)]
            todo += [(ns[n], ns) for n in obj.co_names if n in ns and _runnable(ns[n])]
        elif isinstance(obj, types.FunctionType):
            todo.append((obj.__code__, obj.__globals__))
            for closure in obj.__closure__ or ():
                try:
                    value = closure.cell_contents
                except ValueError:  # an empty cell
                    continue
                if _runnable(value):
                    todo.append((value, obj.__globals__))
        elif isinstance(obj, types.MethodType):
            todo.append((obj.__func__, ns))
        elif isinstance(obj, functools.partial):
            todo.append((obj.func, ns))
        elif isinstance(obj, type):
            if obj.__module__ == "__main__":
                for attr in vars(obj).values():
                    attr = getattr(attr, "__func__", attr)  # staticmethod, classmethod
                    for part in (attr, getattr(attr, "fget", None), getattr(attr, "fset", None)):
                        if isinstance(part, types.FunctionType):
                            todo.append((part, ns))
        elif type(obj).__module__ == "__main__":
            todo.append((type(obj), ns))
    return found


def _runnable(value: Any) -> bool:
    return isinstance(value, (types.FunctionType, types.MethodType, functools.partial, type)) or (
        type(value).__module__ == "__main__")
