"""Kinds that take their process down, loaded by test servers through
``c.BgTasks.extra_kinds`` (``tests.faults.crash_kinds:segfault``)."""

from __future__ import annotations

import ctypes


def segfault() -> None:
    """Read address 0: SIGSEGV, the whole process goes (on the thread executor: the server)."""
    ctypes.string_at(0)
