"""Shared by the benchmarks: one way to print a figure beside its baseline."""

from __future__ import annotations

import statistics
import sys
from typing import Iterable

ROWS: list[tuple[str, str, str, str, str, bool]] = []


def report(figure: str, value: float, unit: str, baseline: float | None, baseline_name: str,
           target: str, ok: bool) -> None:
    ratio = f"{value / baseline:.3g}x" if baseline else "-"
    base = f"{baseline:,.4g} {unit} ({baseline_name})" if baseline is not None else baseline_name
    line = f"{figure:<52} {value:>12,.4g} {unit:<8} baseline {base:<40} ratio {ratio:<8} target {target:<22} {'PASS' if ok else 'MISS'}"
    print(line, flush=True)
    ROWS.append((figure, f"{value:.4g}", unit, ratio, target, ok))


def p50(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def done() -> None:
    misses = [r[0] for r in ROWS if not r[5]]
    if misses:
        print(f"MISSED: {', '.join(misses)}", file=sys.stderr)
