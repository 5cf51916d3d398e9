"""The engine's tunables, apart from the engine so that what reads them (the server's
traits, the retention and store-failure helpers beside the engine) need not import it.

:mod:`.engine` re-exports :class:`EngineConfig`: ``from ...core.engine import EngineConfig``
keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import new_id


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine's tunables (the server fills them from ``c.BgTasks`` traits)."""

    default_executor: str = "process"
    default_timeout: float | None = None
    log_cap: int = 1_000_000
    """Characters of log kept per task (the newest)."""
    keep: int | None = 10_000
    """Terminal tasks kept in history (``None``: no count limit)."""
    max_age: float | None = 30 * 86_400
    """Seconds a terminal task is kept (``None``: no age limit)."""
    cancel_grace: float = 5.0
    """Seconds a cancelled task gets before the executor escalates."""
    retry_backoff: float = 1.0
    """First retry delay in seconds; doubles each attempt."""
    retry_backoff_max: float = 300.0
    progress_persist_interval: float = 1.0
    """Seconds between two stored progress snapshots of one running task."""
    prune_every: int = 1000
    """Prune history after this many tasks ended (and at start)."""
    max_result_bytes: int = 256 * 2**20
    """The largest pickled result kept; a bigger one fails its task (``result_too_large``)."""
    keep_inputs_for: float | None = 86_400.0
    """Seconds an ended task's ``input`` blob is kept (for a retry): 0 drops it as the task
    ends, ``None`` keeps it as long as the task."""
    server_id: str = field(default_factory=new_id)
    """This server among those sharing the store: its tasks record it (fresh per start)."""
    lease_ttl: float = 10.0
    """Seconds this server's lease lasts unrenewed (renewed every third of it): when it
    dies, another server on the store adopts its tasks within this time."""
    kind_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Kind name -> its settings (JSON values), given to its tasks as ``ctx.settings`` and
    to its ``warm`` function (read-only: one dict shared by every task of the kind)."""

