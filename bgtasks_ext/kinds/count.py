"""``count``: the classic test task."""

from __future__ import annotations

import time

from pydantic import Field

from ..core.context import TaskContext
from ..core.registry import kind


@kind("count", title="Count", description="Count up, one round about every `interval` seconds, reporting progress.")
def count(
    ctx: TaskContext,
    times: int = Field(10, ge=0, le=1_000_000, description="How many rounds to count."),
    interval: float = Field(1.0, ge=0, le=3600, description="Seconds per round."),
) -> int:
    deadline = time.monotonic()
    ctx.progress(0, times, f"0 of {times}")
    for i in range(times):
        deadline += interval
        # Sleep in short slices so a cancel lands within a fraction of a second.
        while (left := deadline - time.monotonic()) > 0:
            if ctx.cancelled():
                ctx.progress(i)  # raises TaskCancelled
            time.sleep(min(left, 0.05))
        ctx.progress(i + 1, times, f"{i + 1} of {times}")
        print(f"round {i + 1} of {times}")
    return times
