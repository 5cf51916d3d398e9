"""Kinds the two-server tests load (``c.BgTasks.extra_kinds``): a task that runs until the
test lets it end, so no fixed length has to outlast a server's start."""

from __future__ import annotations

import os
import time

from bgtasks_ext import cancelled


def wait_file(path: str) -> str:
    """Run until ``path`` exists (or until cancelled), then end ``finished``."""
    while not os.path.exists(path):
        if cancelled():
            return "cancelled"
        time.sleep(0.02)
    return "released"
