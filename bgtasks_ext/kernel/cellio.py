"""What a cell reads and writes, and its inputs packed for a worker.

``%%bgtask`` ships a cell to a worker process that has none of the kernel's
variables. Sending the whole namespace would be slow and would fail on the first
unpicklable object the user happens to hold, so the cell is parsed instead: the names
it *reads* before binding them are its inputs, and the names it binds at module
level are its outputs. The analysis errs towards reading too much (an extra input
costs a few bytes; a missing one is a ``NameError`` in the worker).

Pure ``ast`` and ``cloudpickle``: no IPython here, so it is tested without a kernel.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Mapping
from typing import Any

import cloudpickle

from ..core.errors import BgTasksError
from .cellscan import ModuleScan


class UnpicklableInput(BgTasksError):
    """An input of the cell cannot be sent to a worker; nothing was launched."""

    def __init__(self, name: str, exc: BaseException) -> None:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        super().__init__(
            f"cannot send the input {name!r} to a worker ({reason}); "
            "use --executor kernel to run the cell inside this kernel, or --in to leave it out")
        self.name = name
        self.exc = exc


def analyze(cell: str) -> tuple[list[str], list[str]]:
    """``(reads, writes)`` of ``cell``, each in first-seen order.

    *reads*: names loaded that are not certainly bound earlier in the cell (the
    free names of functions and classes defined in it count, minus what the cell
    binds anywhere, since they run later). *writes*: names bound at module level,
    by assignment, ``for``/``with``/``def``/``class`` or ``global`` inside a
    function. Names bound only by ``import`` are not writes: a cell's
    ``import time`` or ``from bgtasks_ext import track`` is how it works, not what
    it makes, and copying modules back would clobber the notebook's own (``--out``
    still names them when wanted). Raises :class:`SyntaxError` like ``compile``.
    """
    scan = ModuleScan()
    scan.run(ast.parse(cell, "<bgtask>", "exec").body)
    writes = set(scan.writes)
    reads = dict.fromkeys(scan.reads)
    reads.update(dict.fromkeys(n for n in scan.deferred if n not in writes))
    return list(reads), [n for n in scan.writes if n in scan.assigned]


def select_inputs(reads: Iterable[str], user_ns: Mapping[str, Any],
                  hidden: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values of ``reads`` that live in ``user_ns``.

    Builtins the user did not shadow and IPython's own names (``hidden``: ``In``,
    ``Out``, ``get_ipython``... unless rebound) are left out: the worker has its own.
    """
    hidden = hidden or {}
    picked: dict[str, Any] = {}
    for name in reads:
        if name not in user_ns or name.startswith("__"):
            continue
        value = user_ns[name]
        if name in hidden and hidden[name] is value:
            continue
        if hasattr(builtins, name) and getattr(builtins, name) is value:
            continue
        picked[name] = value
    return picked


def pack_inputs(names: Iterable[str], user_ns: Mapping[str, Any],
                hidden: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`select_inputs`, checked to pickle; raises :class:`UnpicklableInput`."""
    inputs = select_inputs(names, user_ns, hidden)
    try:
        cloudpickle.dumps(inputs)
    except Exception as exc:
        raise find_unpicklable(inputs) or BgTasksError(f"cannot pickle the inputs: {exc}") from exc
    return inputs


def find_unpicklable(inputs: Mapping[str, Any]) -> UnpicklableInput | None:
    """The error naming the first input that does not pickle alone, if any.

    Called only after pickling a whole job failed: the common case pickles once,
    and only a failure pays for pickling each input to name the one at fault.
    (Modules pickle by reference, or by value when dynamic, so they rarely are.)
    """
    for name, value in inputs.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return UnpicklableInput(name, exc)
    return None
