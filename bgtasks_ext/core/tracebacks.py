"""What a failed task's traceback shows: the user's frames, named as the notebook names them.

Two things stand between an exception raised by task code and the text a user reads:

- the frames of the code that *ran* the task (:func:`.attempt.run_attempt`, the kind
  registry, the ``code`` kind's cell runner) come first in every traceback. They say
  nothing about the user's mistake, so :func:`user_frames` drops them — only those at
  the start: a frame of this package called *by* user code (``progress()`` raising) stays;
- code from a notebook carries IPython's file names for cells (a temporary path per
  cell) — or none at all once cloudpickle has shipped it (``<dynamic-code>``) — and its
  lines live in the kernel's ``linecache`` only. A kernel sends the names and lines of
  the cells a job's code comes from, and which functions were defined in each (by
  :func:`code_key`, which survives pickling); :func:`show_cell` puts them where
  :func:`format_exception` finds them, so the text reads ``File "Cell In[7]", line 3``
  with the line as typed, as IPython shows it.

Both are process-wide tables (cell names and lines are the same for every task of one
kernel, and a worker runs one task at a time); :data:`MAX_NAMES` bounds them in a
long-lived worker.
"""

from __future__ import annotations

import linecache
import os
import traceback
import zlib
from collections.abc import Iterable
from types import CodeType, TracebackType

MAX_NAMES = 10_000
"""File names and functions remembered per process; the tables start afresh beyond."""

CodeKey = tuple[str, int, int]
"""What identifies a function's code in the kernel and, unpickled, in a worker."""

_HERE = os.path.dirname(os.path.abspath(__file__))
_RUNNER_FILES: set[str] = {
    os.path.join(_HERE, "attempt.py"),
    os.path.join(_HERE, "registry.py"),
}
_FILES: dict[str, tuple[str, int]] = {}
_CODES: dict[CodeKey, tuple[str, int]] = {}


def runner_module(path: str) -> None:
    """Declare the module at ``path`` (its ``__file__``) part of what runs tasks: its
    frames at the start of a task's traceback are not shown."""
    _RUNNER_FILES.add(os.path.abspath(path))


def code_key(code: CodeType) -> CodeKey:
    """Name, first line and bytecode checksum of ``code``: equal for a function in the
    kernel and its copy unpickled in a worker (cloudpickle keeps all three, not the
    file name)."""
    return code.co_name, code.co_firstlineno, zlib.crc32(code.co_code)


def show_cell(label: str, lines: list[str], offset: int = 0, filename: str | None = None,
              codes: Iterable[CodeKey] = ()) -> None:
    """Show frames of code compiled from ``filename``, and of the functions ``codes``, as
    ``label`` (e.g. ``Cell In[7]``), their line numbers ``offset`` lines further (IPython
    compiles a cell without its leading blank lines), reading their text from ``lines``
    (the cell as the notebook shows it). Code compiled under ``label`` itself reads
    ``lines`` too."""
    text_lines = [line if line.endswith("\n") else line + "\n" for line in lines]
    # mtime None: linecache.checkcache keeps the entry (IPython registers cells so too).
    linecache.cache[label] = (sum(map(len, text_lines)), None, text_lines, label)
    if len(_FILES) >= MAX_NAMES or len(_CODES) >= MAX_NAMES:
        _FILES.clear()
        _CODES.clear()
    if filename is not None and filename != label:
        _FILES[filename] = (label, offset)
    for key in codes:
        _CODES[key] = (label, offset)


def user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without its leading frames of the task runner."""
    while tb is not None and tb.tb_frame.f_code.co_filename in _RUNNER_FILES:
        tb = tb.tb_next
    return tb


def format_exception(exc: BaseException) -> str:
    """The traceback text of ``exc`` (chained exceptions included), with cell names
    and the notebook's line numbers for code from notebook cells."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__, lookup_lines=False)
    if _FILES or _CODES:
        _rename(te, exc)
    return "".join(te.format())


def _rename(root: traceback.TracebackException, exc: BaseException) -> None:
    # Lines are looked up by the (renamed) file name when the text is made: the label's
    # lines, from show_cell.
    todo: list[tuple[traceback.TracebackException, BaseException | None]] = [(root, exc)]
    seen: set[int] = set()
    while todo:
        te, err = todo.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        tb = err.__traceback__ if err is not None else None
        codes = [frame.f_code for frame, _ in traceback.walk_tb(tb)]
        if len(codes) != len(te.stack):
            codes = []
        for i, frame in enumerate(te.stack):
            named = _FILES.get(frame.filename)
            if named is None and codes:
                named = _CODES.get(code_key(codes[i]))
            if named is None:
                continue
            frame.filename, offset = named
            if offset and frame.lineno is not None:
                frame.lineno += offset
                end = getattr(frame, "end_lineno", None)
                if end is not None:
                    frame.end_lineno = end + offset
        if te.__cause__ is not None:
            todo.append((te.__cause__, err.__cause__ if err is not None else None))
        if te.__context__ is not None:
            todo.append((te.__context__, err.__context__ if err is not None else None))
        group = getattr(te, "exceptions", None) or ()
        inner = getattr(err, "exceptions", None) or ()
        todo += [(t, e) for t, e in zip(group, inner if len(inner) == len(group) else [None] * len(group))]
