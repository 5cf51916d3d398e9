"""jupyter-bgtasks: background tasks for Jupyter.

The public API for task code is re-exported here: ``progress``, ``track``,
``cancelled``, ``TaskCancelled`` and the ``kind`` decorator. The functions named
``_jupyter_*`` are the hooks Jupyter Server and JupyterLab look for.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .core.context import cancelled, progress, track
from .core.errors import BgTasksError, TaskCancelled
from .core.kinds import kind

__all__ = [
    "BgTasksError",
    "TaskCancelled",
    "__version__",
    "cancelled",
    "kind",
    "progress",
    "track",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import BgTasks

    return [{"module": "bgtasks_ext", "app": BgTasks}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-bgtasks"}]
