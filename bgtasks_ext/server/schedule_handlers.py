"""REST routes of schedules, under ``{base_url}bgtasks/api/``: ``GET/POST schedules``,
``GET/PATCH/DELETE schedules/{id}``.

Thin, like :mod:`.handlers`: parse the body (:mod:`.requests`), make one call of the
server's :class:`~bgtasks_ext.scheduling.service.Scheduler` off the event loop (it reads
and writes the store), serialize with its ``to_json`` (the record, the next five fire
times, the last run). ``POST schedules?check_only=true`` validates and answers the next
fire times without storing anything: the panel's form asks it as the user types.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized

from ..core.errors import EngineClosed
from ..core.models import iso
from ..scheduling.service import Scheduler
from .handlers import BgTasksHandler, Route
from .requests import flag, parse_create_schedule, parse_patch_schedule


class ScheduleBase(BgTasksHandler):
    @property
    def scheduler(self) -> Scheduler:
        scheduler: Scheduler | None = self.settings.get("bgtasks_scheduler")
        if scheduler is None or not self.engine.running:
            raise EngineClosed()
        return scheduler


class SchedulesHandler(ScheduleBase):
    """``GET`` lists every schedule (oldest first); ``POST`` creates one, or with
    ``check_only=true`` answers its next fire times (the form's preview)."""

    @authorized
    async def get(self) -> None:
        scheduler = self.scheduler

        def listing() -> list[dict[str, Any]]:
            return [scheduler.to_json(s) for s in scheduler.list()]

        self.reply({"schedules": await self.off_loop(listing)})

    @authorized
    async def post(self) -> None:
        checking = flag("check_only", self.get_query_argument("check_only", None))
        spec = parse_create_schedule(self.request.body, owner=self.owner)
        scheduler = self.scheduler
        if checking:
            runs = await self.off_loop(scheduler.preview, spec)
            self.reply({"next_runs": [iso(t) for t in runs]})
            return

        def create() -> dict[str, Any]:
            return scheduler.to_json(scheduler.create(spec))

        self.reply(await self.off_loop(create), 201)


class ScheduleHandler(ScheduleBase):
    @authorized
    async def get(self, schedule_id: str) -> None:
        scheduler = self.scheduler
        self.reply(await self.off_loop(lambda: scheduler.to_json(scheduler.get(schedule_id))))

    @authorized
    async def patch(self, schedule_id: str) -> None:
        changes = parse_patch_schedule(self.request.body)
        scheduler = self.scheduler
        self.reply(await self.off_loop(
            lambda: scheduler.to_json(scheduler.patch(schedule_id, changes))))

    @authorized
    async def delete(self, schedule_id: str) -> None:
        await self.off_loop(self.scheduler.delete, schedule_id)
        self.set_status(204)
        self.finish()


def schedule_routes(base: str) -> list[Route]:
    """The schedules' part of the URL table, relative to ``{base_url}bgtasks/api/``."""
    schedule_id = r"(?P<schedule_id>[^/]+)"
    return [
        (f"{base}/schedules", SchedulesHandler),
        (f"{base}/schedules/{schedule_id}", ScheduleHandler),
    ]
