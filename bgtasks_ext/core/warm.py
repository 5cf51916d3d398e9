"""Processes a kind keeps alive across tasks in this process (a warm pool's kernels).

A process worker ends what a task left running when the task returns (the leftover
sweep of :mod:`bgtasks_ext.executors.worker`). A kind whose ``warm`` function (see
:func:`.registry.kind`) pre-starts processes for later tasks marks them here with
:func:`keep`: the sweep spares them and their descendants. They still die with the
worker (its exit, retirement, a crash or ``kill -9``, the server's stop): the worker
ends its descendants as it exits, and the executor ends what carries the worker's
mark (:data:`WORKER_MARK`, inherited through the environment) once it is gone.

A task that takes a kept process over calls :func:`forget` *before* using it, so that
from then on it is the task's own: ended with the task's tree on cancel, timeout, or
when the task leaves it running.

Start a process that will be kept inside :func:`starting`: a sweep that runs at the
same moment (a task ending while the pool refills) waits until it is kept, and so
never takes the fresh process for a leftover of the task.

Outside a process worker (thread executor, a Dask worker) nothing reads this: keeping
is harmless there and the sweep does not exist. Pure: no imports beyond the standard
library; every function is thread-safe.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

WORKER_MARK = "BGTASKS_WORKER"
"""Environment variable a process worker is started with (unique per worker). Its
children inherit it; a kept process must keep it in its environment (start it with
``os.environ`` plus your changes, not a fresh environment), which is how the executor
finds it after the worker died."""

_lock = threading.RLock()
_kept: frozenset[int] = frozenset()
_out_fd = 1


def keep(pid: int) -> None:
    """Spare process ``pid`` (and what it starts) from the sweep at a task's end."""
    global _kept
    with _lock:
        _kept = _kept | {int(pid)}


def forget(pid: int) -> None:
    """``pid`` is no longer kept (a task took it over, or it ended). No error if it was not."""
    global _kept
    with _lock:
        _kept = _kept - {int(pid)}


def kept() -> frozenset[int]:
    """The pids kept now (a snapshot)."""
    return _kept


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Hold while starting a process and calling :func:`keep` on it: the sweep waits."""
    with _lock:
        yield


def output_fd() -> int:
    """Where a kept process should write its stdout and stderr: the worker's real output
    (the server's log). A process worker's fds 1 and 2 feed the running task's log, so a
    process started by a warm function and left writing to them would write into
    whichever task runs; pass this fd as its ``stdout``/``stderr`` (or ``DEVNULL``)."""
    return _out_fd


def set_output_fd(fd: int) -> None:
    """The worker says where its real output is (see :func:`output_fd`)."""
    global _out_fd
    _out_fd = fd
