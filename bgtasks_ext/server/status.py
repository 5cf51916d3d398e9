"""``GET bgtasks/api/status``: the health of the engine's executors.

An executor that depends on something outside this server (the ``dask`` executor's
cluster) says here whether it can take tasks, and why not: the same message that
refuses its new tasks, naming the setting to fix. The others report ``{"available": true}``.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized

from .handlers import BgTasksHandler


class StatusHandler(BgTasksHandler):
    @authorized
    async def get(self) -> None:
        engine = self.engine
        executors: dict[str, Any] = {}
        for name, executor in engine.executors.items():
            problem = executor.unavailable()
            info: dict[str, Any] = {"available": problem is None, "error": problem}
            status = getattr(executor, "status", None)
            if callable(status):
                # Off the loop: it may ask the cluster (how many workers).
                info.update(await self.off_loop(status))
            executors[name] = info
        self.reply({"executors": executors, "default_executor": engine.config.default_executor})
