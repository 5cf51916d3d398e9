"""A notebook job's parameters: checked at admission, injected papermill-style at run.

As papermill does, the values go into a new code cell tagged ``injected-parameters``,
placed right after the first cell tagged ``parameters`` (so they override its defaults),
or first when no cell has that tag; a cell injected by an earlier run (a copy run again)
is replaced. Python kernels get one ``name = <Python literal>`` line per value.
"""

from __future__ import annotations

import keyword
import math
from typing import Any, Mapping

from ..core.errors import InvalidInput

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""The integers a stored task's JSON gives back as they were (the store's reader makes a
float of a larger one, and fails on one beyond a float's range)."""


def check_names(parameters: Mapping[str, Any]) -> None:
    """Each name must be a Python identifier (it becomes a variable of the notebook), and
    each value a JSON value that is stored and read back as it is (see :data:`INT_MAX`)."""
    for name, value in parameters.items():
        if not name.isidentifier():
            raise InvalidInput(f"params.parameters.{name}",
                               "must be a Python identifier (it becomes a variable of the notebook)")
        if keyword.iskeyword(name):
            raise InvalidInput(f"params.parameters.{name}", f"{name!r} is a Python keyword, not an "
                               "identifier: it cannot be a variable of the notebook")
        bad = _unstorable(value)
        if bad is not None:
            raise InvalidInput(f"params.parameters.{name}", bad)


def _unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be a parameter (``None`` when it can)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                return (f"the integer {str(item)[:20]}... is too large to store (integers from "
                        f"-2**63 to 2**64-1; give a larger one as a string)")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "the number is out of range (no infinity or NaN: JSON cannot hold them)"
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def language(metadata: Mapping[str, Any]) -> str:
    """The notebook's language, as its metadata says (``python`` when it says nothing)."""
    spec = metadata.get("kernelspec")
    info = metadata.get("language_info")
    name = ((spec.get("language") if isinstance(spec, dict) else None)
            or (info.get("name") if isinstance(info, dict) else None) or "python")
    return str(name)


def check_language(parameters: Mapping[str, Any], metadata: Mapping[str, Any],
                   field: str = "params.parameters") -> None:
    """Parameters go into Python notebooks only (they are written as Python)."""
    lang = language(metadata)
    if parameters and lang.lower() != "python":
        raise InvalidInput(field, f"parameters can be injected into Python notebooks only, and "
                           f"this notebook's kernel runs {lang!r}")


def python_source(parameters: Mapping[str, Any]) -> str:
    """``name = literal`` lines: ``repr`` of JSON values is a Python literal (strings,
    numbers, booleans, None, lists and dicts of them)."""
    lines = ["# Parameters"]
    lines.extend(f"{name} = {value!r}" for name, value in parameters.items())
    return "\n".join(lines) + "\n"


def inject(nb: Any, parameters: Mapping[str, Any], language: str) -> None:
    """Add the parameters cell to ``nb`` (an nbformat v4 notebook), in place."""
    import nbformat

    if not parameters:
        return
    if language.lower() != "python":
        raise ValueError(f"parameters can be injected into Python kernels only, and this "
                         f"notebook's kernel runs {language!r}")
    cells = [c for c in nb.cells if INJECTED_TAG not in _tags(c)]
    cell = nbformat.v4.new_code_cell(python_source(parameters))
    cell.metadata["tags"] = [INJECTED_TAG]
    at = next((i + 1 for i, c in enumerate(cells) if PARAMETERS_TAG in _tags(c)), 0)
    cells.insert(at, cell)
    nb.cells = cells


def _tags(cell: Any) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []
