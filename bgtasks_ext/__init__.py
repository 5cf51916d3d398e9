"""jupyter-bgtasks: background tasks for Jupyter.

The public API for task code is re-exported here: ``progress``, ``track``,
``cancelled``, ``TaskCancelled`` and the ``kind`` decorator. The notebook API
(``submit``, ``schedule``, ``run_notebook``, ``attach``, ``connect`` and their errors) is loaded on first use by
:func:`__getattr__`: workers import this package, and must not pay for (or need)
IPython, ipywidgets or tornado. The functions named
``_jupyter_*`` are the hooks Jupyter Server and JupyterLab look for.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .core.context import cancelled, progress, track
from .core.errors import BgTasksError, TaskCancelled
from .core.registry import kind

__all__ = [
    "BgTasksError",
    "NoServer",
    "ScheduleHandle",
    "TaskCancelled",
    "TaskFailed",
    "TaskHandle",
    "__version__",
    "attach",
    "cancelled",
    "connect",
    "kind",
    "progress",
    "run_notebook",
    "schedule",
    "submit",
    "track",
]

_LAZY = {
    "submit": "bgtasks_ext.kernel.api",
    "schedule": "bgtasks_ext.kernel.api",
    "run_notebook": "bgtasks_ext.kernel.api",
    "ScheduleHandle": "bgtasks_ext.kernel.schedules",
    "attach": "bgtasks_ext.kernel.api",
    "connect": "bgtasks_ext.kernel.client",
    "NoServer": "bgtasks_ext.kernel.client",
    "TaskFailed": "bgtasks_ext.kernel.client",
    "TaskHandle": "bgtasks_ext.kernel.handle",
}


def __getattr__(name: str) -> Any:
    """The notebook API, imported when first asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bgtasks_ext' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext bgtasks_ext``: register ``%%bgtask``, ``%bgtask`` and ``%bgtasks``.
    Imported here, not at package import, so workers never load IPython."""
    from .kernel.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext bgtasks_ext``: drop the magics (running tasks go on)."""
    from .kernel.magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import BgTasks

    return [{"module": "bgtasks_ext", "app": BgTasks}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-bgtasks"}]
