"""Kinds the browser tests' servers load with ``--BgTasks.extra_kinds`` (this folder is put
on their ``PYTHONPATH``, so the server and its spawned workers can import it)."""

from __future__ import annotations

from pydantic import Field

from bgtasks_ext.core.context import TaskContext
from bgtasks_ext.core.registry import kind


def _check(value: int) -> None:
    if value > 3:
        raise ValueError(f"value {value} is too large for this test")


@kind("boom", title="Boom", description="Fails at once with a ValueError (browser tests).")
def boom(
    ctx: TaskContext,
    value: int = Field(7, description="Anything above 3 fails."),
) -> int:
    ctx.progress(0, 1, "checking")
    _check(value)
    return value
