"""Kinds for tests/faults/test_warm_workers.py (run inside worker processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bgtasks_ext.core import warm
from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.registry import kind
from bgtasks_ext.executors.proctree import children

WARM = "tests.faults.warm_up:warm_up"
REF = "tests.faults.warm_kinds:"


@kind(warm=WARM)
def pooled(ctx: TaskContext) -> dict[str, Any]:
    """A kind whose workers keep a process warm."""
    return {"pid": os.getpid(), "settings": dict(ctx.settings)}


@kind(warm="tests.faults.warm_up:broken")
def pooled_broken() -> int:
    return os.getpid()


def settings_of(ctx: TaskContext) -> dict[str, Any]:
    return dict(ctx.settings)


def probe() -> dict[str, Any]:
    """What this worker holds: was it warmed (the warm module imported), its children."""
    return {"pid": os.getpid(), "warmed": "tests.faults.warm_up" in sys.modules,
            "children": children(os.getpid()), "kept": sorted(warm.kept())}


def leave_one(pidfile: str) -> int:
    """Start a ``sleep 1000`` and return, leaving it running."""
    proc = subprocess.Popen(["sleep", "1000"])
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    return proc.pid


def take_over(pid: int) -> int:
    """Take a kept process over (forget it first, as a task must) and leave it running."""
    warm.forget(pid)
    return pid
