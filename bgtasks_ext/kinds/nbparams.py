"""A notebook job's parameters: checked at admission, injected papermill-style at run.

As papermill does, the values go into a new code cell tagged ``injected-parameters``,
placed right after the first cell tagged ``parameters`` (so they override its defaults),
or first when no cell has that tag; a cell injected by an earlier run (a copy run again)
is replaced. Python kernels get one ``name = <Python literal>`` line per value.
"""

from __future__ import annotations

import keyword
from typing import Any, Mapping

from ..core.errors import InvalidInput

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def check_names(parameters: Mapping[str, Any]) -> None:
    """Each name must be a Python identifier (it becomes a variable of the notebook)."""
    for name in parameters:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidInput(f"params.parameters.{name}",
                               "must be a Python identifier (it becomes a variable of the notebook)")


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
