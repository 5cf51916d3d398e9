"""Sizes for people: ``314572800`` -> ``"315 MB"`` (the widget and the handle's
sending message share it). Decimal units, as the labels say (``MB`` is 10⁶ bytes)."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """3 significant digits at most."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 10 else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable: the loop returns at GB")
