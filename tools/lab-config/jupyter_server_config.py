"""Jupyter config of ``make lab`` (on ``JUPYTER_CONFIG_PATH``): the shipped notebooks are
saved without their outputs.

JupyterLab autosaves a notebook, outputs included, as soon as it runs; the notebooks this
checkout ships are committed without outputs, so a tour of them would leave the checkout
dirty. A pre-save hook strips what running added (``tools/strip_notebook.py``) from the
notebooks git tracks, and only from those: the page keeps its outputs, the file on disk
stays as committed, and notebooks a user creates are saved as Jupyter always does.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

TOOLS = Path(__file__).resolve().parents[1]
CHECKOUT = TOOLS.parent


def _tracked_notebooks() -> frozenset[Path]:
    """The notebooks git tracks in this checkout (none outside a git checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.ipynb"], cwd=CHECKOUT, capture_output=True,
            check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset((CHECKOUT / name).resolve() for name in listed.decode().split("\0") if name)


def _load_strip() -> Any:
    spec = importlib.util.spec_from_file_location("bgtasks_strip_notebook", TOOLS / "strip_notebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.strip


SHIPPED = _tracked_notebooks()
_strip = _load_strip()


def strip_shipped_outputs(model: dict[str, Any], path: str, contents_manager: Any, **_: Any) -> None:
    """Pre-save hook: a shipped notebook is written without what running it added."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    if (Path(contents_manager.root_dir) / path.lstrip("/")).resolve() in SHIPPED:
        _strip(model["content"])


class CheckoutContentsManager(AsyncLargeFileManager):
    """Jupyter's own contents manager, with :func:`strip_shipped_outputs` before each save.

    (Registered here: setting the ``pre_save_hook`` trait by config warns about
    "overriding" the very hook it sets, at every start.)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.register_pre_save_hook(strip_shipped_outputs)


c = get_config()  # type: ignore[name-defined]  # noqa: F821
c.ServerApp.contents_manager_class = CheckoutContentsManager
