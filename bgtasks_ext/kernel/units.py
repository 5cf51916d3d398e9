"""Sizes for people: ``314572800`` -> ``"300 MB"`` (the widget and the handle's
sending message share it)."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """Binary multiples, as file managers show sizes; 3 significant digits at most."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable: the loop returns at GB")
