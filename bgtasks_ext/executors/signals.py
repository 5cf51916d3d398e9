"""How a worker process handles signals: SIGTERM cancels the running task, and the
worker dies with its server.

Used by :mod:`.worker`; kept apart because async exceptions need care of their own.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from ..core.errors import TaskCancelled


class SigtermGuard:
    """Whether a SIGTERM may raise in the main thread right now.

    It may only while user code runs (``armed``), and not while the main thread is
    inside the worker's own send path (``critical``): an exception there would leave
    half a message on the socket. A signal that lands in a critical section is
    remembered and raised when the section ends."""

    __slots__ = ("armed", "critical", "pending", "main")

    def __init__(self) -> None:
        self.armed = False
        self.critical = False
        self.pending = False
        self.main = threading.get_ident()

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if not self.armed:
            return  # between tasks: the task it was meant for has already ended
        if self.critical:
            self.pending = True
            return
        # Disarm first: one SIGTERM, one exception. A second could otherwise land in
        # the worker's own except/finally blocks, after the task has already ended.
        self.armed = False
        raise TaskCancelled("terminated")

    def __enter__(self) -> SigtermGuard:
        """Arm: the task's code starts (the ``window`` of ``run_attempt``)."""
        self.armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.armed = False

    def enter(self) -> bool:
        """Start a critical section (main thread only; nested calls are no-ops).
        Returns whether this call started it, for :meth:`leave`."""
        if threading.get_ident() != self.main or self.critical:
            return False
        self.critical = True
        return True

    def leave(self, entered: bool) -> None:
        """End the section :meth:`enter` started, raising a SIGTERM that waited."""
        if entered:
            self.critical = False
            if self.pending:
                self.pending = False
                if self.armed:
                    self.armed = False
                    raise TaskCancelled("terminated")


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a worker stuck in C
    code (where the reader thread cannot run) still goes with a crashed server."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
