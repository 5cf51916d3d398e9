"""Strip what running a notebook adds: outputs, execution counts, per-run metadata.

The notebooks in ``notebooks/`` are committed without outputs. JupyterLab autosaves a
notebook with its outputs as soon as it runs, so a tour of them would leave the checkout
dirty: ``make lab`` saves them through :func:`strip` (a pre-save hook in
``tools/lab-config/``), and ``tests/notebooks`` checks that the committed ones are what
:func:`strip_text` makes of them.

Only what a run changes is dropped; what a person writes (sources, tags, the kernel) is
kept. :func:`strip_text` writes exactly what Jupyter writes (``nbformat``: sorted keys,
indent 1, non-ASCII kept, a final newline), with the standard library only. Text that is
not a notebook passes through unchanged.

Usage: ``strip_notebook.py < in.ipynb > out.ipynb``, or ``strip_notebook.py PATH...`` to
strip files in place.
"""

from __future__ import annotations

import json
import sys
from typing import Any

CELL_RUN_KEYS = ("collapsed", "scrolled", "execution", "ExecuteTime")
"""Cell metadata a run or a click on an output writes (not the author)."""
NOTEBOOK_RUN_KEYS = ("widgets", "signature")
"""Notebook metadata a run writes: saved widget state, the trust signature."""


def strip(nb: dict[str, Any]) -> dict[str, Any]:
    """``nb`` (a v4 notebook as parsed JSON) without what running it added; in place."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in CELL_RUN_KEYS:
            meta.pop(key, None)
        jupyter = meta.get("jupyter")
        if isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del meta["jupyter"]
    meta = nb.get("metadata", {})
    for key in NOTEBOOK_RUN_KEYS:
        meta.pop(key, None)
    # The kernel fills language_info in (its version, lexer, ...) at every run: keep the
    # language's name only, as the committed notebooks have it.
    info = meta.get("language_info")
    if isinstance(info, dict) and "name" in info:
        meta["language_info"] = {"name": info["name"]}
    return nb


def strip_text(text: str) -> str:
    """The stripped notebook as Jupyter would write it; other text unchanged."""
    try:
        nb = json.loads(text)
    except ValueError:
        return text
    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        return text
    return json.dumps(strip(nb), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        sys.stdout.buffer.write(strip_text(data).encode("utf-8", "surrogateescape"))
        return 0
    for path in argv:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        stripped = strip_text(text)
        if stripped != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(stripped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
