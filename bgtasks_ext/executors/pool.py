"""The workers of one interpreter and the FIFO of jobs waiting for them.

Owned by the process executor's loop thread; nothing here is locked.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import Any, Mapping, Sequence

from ..core.ports import Job
from .worker_handle import WorkerHandle

START_FAILURES = 3
"""Workers of one interpreter that may die before saying ``ready``, in a row, before
the jobs waiting for that interpreter fail instead of waiting forever."""
BACKOFF_MAX = 30.0


class Pool:
    """Up to ``size`` workers running ``python``.

    A *warm* pool (the server's own interpreter) keeps ``size`` workers alive at all
    times, so a job never waits for an interpreter to start. Other pools (a kernel's
    interpreter, say) start workers only as their jobs need them, up to ``size``, and
    keep them afterwards.
    """

    def __init__(self, python: str, size: int, warm: bool, env: Mapping[str, str]) -> None:
        self.python = python
        self.size = size
        self.warm = warm
        self.env = env
        self.workers: list[WorkerHandle] = []
        self.idle: deque[WorkerHandle] = deque()
        self.queue: deque[Job] = deque()
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = ""
        self.warms: dict[str, Any] = {}
        """Warm function (``module:function``) -> its settings: each one a job of this
        pool asked for; every worker calls each once (core/warm.py)."""

    def busy(self) -> int:
        return sum(1 for w in self.workers if w.job is not None)

    def starting(self) -> int:
        return sum(1 for w in self.workers if not w.ready)

    def to_spawn(self, now: float) -> int:
        """How many workers to start now."""
        if now < self.retry_at:
            return 0
        live = [w for w in self.workers if not w.retiring]
        want = self.size if self.warm else min(self.size, self.busy() + len(self.queue))
        return max(0, want - len(live))

    def spawn(self) -> WorkerHandle:
        """Start one worker (``OSError`` when the interpreter cannot be run)."""
        w = WorkerHandle(self.python, self.env)
        self.workers.append(w)
        return w

    def became_ready(self, w: WorkerHandle) -> None:
        w.ready = True
        self.failures = 0
        self.retry_at = 0.0
        self.idle.append(w)

    def start_failed(self, error: str) -> bool:
        """Note a worker that never became ready; ``True`` when waiting jobs should
        fail because this interpreter does not seem to work at all."""
        self.failures += 1
        self.last_error = error
        self.retry_at = time.monotonic() + min(BACKOFF_MAX, 0.5 * 2 ** (self.failures - 1))
        return self.failures >= START_FAILURES and not any(w.ready for w in self.workers)

    def remove(self, w: WorkerHandle) -> None:
        if w in self.workers:
            self.workers.remove(w)
        if w in self.idle:
            self.idle.remove(w)


def worker_env(python: str, env: Mapping[str, str], path: Sequence[str] | None) -> dict[str, str]:
    """The environment of ``python``'s workers: ours, plus ``env``, with ``path``
    prepended to ``PYTHONPATH``. ``path=None`` passes the server's ``sys.path`` to
    workers of the server's own interpreter (so that what the server imports, they
    import too, even from entries added at run time) and nothing to others."""
    out = dict(os.environ)
    out.update(env)
    extra = list(path) if path is not None else []
    if path is None and python == sys.executable:
        extra = [p for p in sys.path if p]
    if extra:
        out["PYTHONPATH"] = os.pathsep.join([*extra, *filter(None, [out.get("PYTHONPATH")])])
    return out
