"""Route ``print`` output of a task into its log.

``sys.stdout``/``sys.stderr`` are process-wide, so :func:`install` swaps them once
for a router that sends each write to the log of the task running in the writing
thread (see :mod:`.context`), and passes everything else through unchanged.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Any, TextIO

from . import context

_lock = threading.Lock()


class _Router(io.TextIOBase):
    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, s: str) -> int:  # type: ignore[override]
        ctx = context.current()
        if ctx is None:
            return self.inner.write(s)
        if s:
            ctx.log(s)
        return len(s)

    def flush(self) -> None:
        if context.current() is None:
            self.inner.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install() -> None:
    """Swap in the routers (idempotent, and cheap when they are in place)."""
    if isinstance(sys.stdout, _Router) and isinstance(sys.stderr, _Router):
        return
    with _lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)  # type: ignore[assignment]
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)  # type: ignore[assignment]
