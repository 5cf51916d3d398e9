"""``sleep``: wait, cancellable, and return the seconds slept."""

from __future__ import annotations

import time

from pydantic import Field

from ..core.context import TaskContext
from ..core.registry import kind


@kind("sleep", title="Sleep", description="Wait `seconds` seconds (cancellable at any moment).")
def sleep(
    ctx: TaskContext,
    seconds: float = Field(1.0, ge=0, le=86_400, description="How long to wait."),
) -> float:
    start = time.monotonic()
    end = start + seconds
    while (left := end - time.monotonic()) > 0:
        ctx.progress(seconds - left, seconds)
        time.sleep(min(left, 0.05))
    ctx.progress(seconds, seconds)
    return round(time.monotonic() - start, 3)
