"""Kinds the host-worker tests declare (importable by worker processes)."""

from __future__ import annotations

import os
import time

from bgtasks_ext import cancelled


def host_loop(marker: str) -> str:
    """A host-lifetime worker: notes its process id, then runs until cancelled."""
    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    while not cancelled():
        time.sleep(0.02)
    return "stopped"
