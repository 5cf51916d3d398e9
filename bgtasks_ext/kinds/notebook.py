"""``notebook``: run a notebook file as a background job (docs/notebook-jobs.md).

The notebook is named relative to the server's ``root_dir``; :func:`check` refuses, at
admission and for every caller (REST, kernels, schedules), what could not run: a path
that is missing, absolute, outside the root, not an ``.ipynb`` file or not a readable
notebook, a ``cwd`` that is not a directory inside the root, a kernel the server does not
have, a parameter name that is not a Python identifier. The task's working directory is
the root, its default name the notebook's file name.

Running (:mod:`.nbrun`, imported only by a job: it pulls in nbclient) injects the
parameters (:mod:`.nbparams`), executes each code cell with nbclient on a kernel from
this process's pool or a fresh one (:mod:`.kernelpool`), and writes the executed copy
beside the source (:mod:`.nbfiles`) however the job ends.

Settings (``ctx.settings``, from ``c.BgTasks.notebook_kernels`` and the server):
``kernels`` (ready kernels kept per kernel name in a process worker) and ``root_dir``.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any, Mapping

from pydantic import Field

from ..core.context import TaskContext
from ..core.errors import InvalidInput
from ..core.registry import Checked, KindSite, kind
from . import kernelpool, nbfiles, nbparams

DEFAULT_KERNEL = "python3"
WARM_KERNELS = ("python3",)
"""Kernel names :func:`warm` fills before any job asks (the others fill after their first job)."""


def check(params: dict[str, Any], site: KindSite) -> Checked:
    """The notebook job's admission rule (see the module doc)."""
    root = nbfiles.root_of(site.root_dir)
    path: str = params["path"]
    source = nbfiles.notebook_file(root, path)
    metadata = nbfiles.peek_notebook(source, path)
    nbfiles.check_writable_beside(root, path)
    cwd = params.get("cwd")
    if cwd is not None:
        nbfiles.directory(root, cwd)
    nbparams.check_names(params.get("parameters") or {})
    nbparams.check_language(params.get("parameters") or {}, metadata)
    name = params.get("kernel_name")
    known = site.kernel_names() if site.kernel_names is not None else None
    if known is not None:
        wanted = name or nbfiles.kernelspec_name(metadata) or DEFAULT_KERNEL
        if wanted not in known:
            where = "" if name else " (the notebook's metadata.kernelspec.name)"
            raise InvalidInput("params.kernel_name", f"this server has no kernel {wanted!r}{where}; "
                               f"it has: {', '.join(sorted(known)) or 'none'}")
    return Checked(params, name=PurePosixPath(path).name, cwd=str(root))


@kind("notebook", title="Notebook", check=check, warm="bgtasks_ext.kinds.notebook:warm",
      description="Run a notebook file (relative to the server's root) with parameters; the "
      "executed copy is written beside it.")
def notebook(
    ctx: TaskContext,
    path: str = Field(description="The notebook, relative to the server's root directory, "
                      "'/'-separated (as the file browser names it)."),
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Values injected as a cell after the cell tagged "
        "'parameters' (first when there is none)."),
    kernel_name: str | None = Field(None, description="Default: the notebook's kernel."),
    cwd: str | None = Field(None, description="The kernel's working directory, relative to the "
                            "root. Default: the notebook's folder."),
) -> dict[str, Any]:
    target = nbfiles.locate(_root(ctx.settings), path, kernel_name, cwd, DEFAULT_KERNEL)
    # Imported here, not at the top: ~1.5 s in a fresh process (a warm worker has it).
    # (Starting the kernel meanwhile gained nothing on 2 cores: both are CPU.)
    with kernelpool.IMPORTS:
        from .nbrun import run_notebook
    kernel = kernelpool.submit(kernelpool.acquire(target.kernel_name, target.folder))
    return run_notebook(ctx, target, parameters, kernel)


def _root(settings: Mapping[str, Any]) -> str:
    """The server's root: from the settings, else the task's cwd (the root, set at admission)."""
    root = settings.get("root_dir")
    return root if isinstance(root, str) and root else os.getcwd()


def warm(settings: Mapping[str, Any]) -> None:
    """A process worker's warm-up (on a background thread): fill the pool of ready kernels
    and import the Jupyter stack (~1.5 s: no job pays it). The pool first: its kernels
    start in other processes (the fork server's own imports) while this one imports."""
    kernelpool.import_client()
    size = settings.get("kernels", 1)
    size = size if isinstance(size, int) and size >= 0 else 1
    pool = kernelpool.make_pool(size, _root(settings))
    if pool is not None:
        for name in WARM_KERNELS:
            pool.fill(name)
    with kernelpool.IMPORTS:
        import nbclient  # noqa: F401 - the import is the point
        import nbformat  # noqa: F401

        from . import nbrun  # noqa: F401
