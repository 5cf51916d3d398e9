"""Kinds that print, for the live-log tests (importable, so process workers load them)."""

from __future__ import annotations

import os
import time


def chatty(lines: int = 100, pause: float = 0.0) -> int:
    """Print ``lines`` numbered lines, ``pause`` seconds apart."""
    for i in range(lines):
        print(f"line {i:05d}")
        if pause:
            time.sleep(pause)
    return lines


def gated(gate: str, timeout: float = 60.0) -> str:
    """Print a line, wait until the file ``gate`` exists, print another."""
    print("before the gate", flush=True)
    deadline = time.monotonic() + timeout
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    print("after the gate", flush=True)
    return "through"
