"""Task activity counts as server activity, so an idle culler leaves working servers alone.

JupyterHub's idle culler (and the hub's own activity tracking) read a server's
``last_activity`` from ``GET /api/status``, which jupyter_server computes from API
requests, kernel activity and ``settings["last_activity_times"]``. A server whose only
work is a task running for hours, or a task waiting for its ``run_on``, makes none of
the first two, looks idle, and would be stopped with its tasks. So while any task is
live (pending, running or cancelling) this reports the server active: at every task
creation and state change, and every ``interval`` seconds in between.
``c.BgTasks.report_activity = False`` turns it off.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, Callable, MutableMapping

from ..core.engine import Engine
from ..core.models import TaskEvent

KEY = "bgtasks"
"""Our entry in ``last_activity_times``."""


class ActivityReporter:
    """Keeps ``times[KEY]`` at "now" while the engine has live tasks."""

    def __init__(self, engine: Engine, times: MutableMapping[str, Any], interval: float) -> None:
        self.engine = engine
        self.times = times
        self.interval = interval
        self._unsubscribe: Callable[[], None] | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin reporting (on the server's event loop)."""
        self._unsubscribe = self.engine.subscribe(self._on_event)
        self._ticker = asyncio.create_task(self._tick_forever())
        self.tick()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None

    def tick(self) -> None:
        """Report activity now if any task is live."""
        if self.engine.live_tasks():
            self._touch()

    def _on_event(self, event: TaskEvent) -> None:
        # Called under the engine lock, from any thread: one dict store, nothing more.
        # Progress is left to the ticker (it can come 20 times a second per task).
        if event.change in ("created", "state"):
            self._touch()

    def _touch(self) -> None:
        self.times[KEY] = datetime.now(timezone.utc)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
