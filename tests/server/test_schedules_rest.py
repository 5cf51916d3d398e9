"""Schedules over REST, against a real server (in-process), its real scheduler firing
real tasks into a real SQLite store; and on the events websocket."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import pytest

from .test_rest import API, call

EVERY = {"kind": "count", "params": {"times": 1}, "every": 0.5, "name": "tick"}


async def runs_of(jp_fetch: Any, schedule_id: str) -> list[dict[str, Any]]:
    code, page = await call(jp_fetch, "tasks", params={"schedule_id": schedule_id})
    assert code == 200
    return page["tasks"]  # type: ignore[no-any-return]


async def test_a_schedule_is_created_listed_fired_and_deleted(bgtasks_app: Any, jp_fetch: Any) -> None:
    # When a user creates a schedule every 0.5 s
    code, schedule = await call(jp_fetch, "schedules", method="POST", body=EVERY)
    assert code == 201, schedule
    # Then it says when it fires next (5 times, 0.5 s apart), and it is listed
    times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in schedule["next_runs"]]
    assert len(times) == 5
    assert all(abs((b - a).total_seconds() - 0.5) < 1e-3 for a, b in zip(times, times[1:]))
    assert schedule["enabled"] is True and schedule["overlap"] == "skip" and schedule["last_run"] is None
    code, listing = await call(jp_fetch, "schedules")
    assert [s["id"] for s in listing["schedules"]] == [schedule["id"]]
    # And it fires: its runs are tasks that carry its id and their fire time
    for _ in range(60):
        runs = await runs_of(jp_fetch, schedule["id"])
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(runs) >= 2
    assert all(r["schedule_id"] == schedule["id"] and r["scheduled_for"] for r in runs)
    code, again = await call(jp_fetch, "schedules", schedule["id"])
    assert again["last_run"] is not None and again["last_run"]["id"] in {r["id"] for r in runs}
    # When it is disabled, it stops firing at once
    code, off = await call(jp_fetch, "schedules", schedule["id"], method="PATCH", body={"enabled": False})
    assert code == 200 and off["enabled"] is False and off["next_runs"] == []
    count = len(await runs_of(jp_fetch, schedule["id"]))
    await asyncio.sleep(1.2)
    assert len(await runs_of(jp_fetch, schedule["id"])) == count
    # When it is deleted, it is gone, its runs stay
    code, _ = await call(jp_fetch, "schedules", schedule["id"], method="DELETE")
    assert code == 204
    assert (await call(jp_fetch, "schedules", schedule["id"]))[0] == 404
    assert len(await runs_of(jp_fetch, schedule["id"])) == count


async def test_the_preview_answers_next_fire_times_and_stores_nothing(bgtasks_app: Any, jp_fetch: Any) -> None:
    body = {"kind": "count", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    code, preview = await call(jp_fetch, "schedules", method="POST", body=body, params={"check_only": "true"})
    assert code == 200 and len(preview["next_runs"]) == 5
    # 02:30 in Berlin is 00:30 or 01:30 UTC
    assert all(t[11:16] in ("00:30", "01:30") for t in preview["next_runs"])
    assert (await call(jp_fetch, "schedules"))[1]["schedules"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "count"}, "every"),
    ({"kind": "count", "every": 1, "cron": "* * * * *"}, "every"),
    ({"kind": "count", "every": 0.05}, "every"),
    ({"kind": "count", "every": True}, "every"),
    ({"kind": "count", "every": "5"}, "every"),
    ({"kind": "count", "cron": "61 * * * *"}, "cron"),
    ({"kind": "count", "cron": "* * *"}, "cron"),
    ({"kind": "count", "cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"kind": "count", "every": 1, "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"},
     "end_at"),
    ({"kind": "count", "every": 1, "overlap": "sometimes"}, "overlap"),
    ({"kind": "count", "every": 1, "misfire": "later"}, "misfire"),
    ({"kind": "count", "every": 1, "params": {"times": "many"}}, "params.times"),
    ({"kind": "nope", "every": 1}, "kind"),
    ({"kind": "count", "every": 1, "colour": "red"}, "colour"),
    ({"kind": "count", "every": 1, "start_at": "tomorrow"}, "start_at"),
    ({"kind": "count", "every": 1, "executor": "kernel", "origin": {"kernel_id": "k1"}}, "executor"),
    ({"kind": "count", "every": 1, "executor": "gpu"}, "executor"),
    ({"kind": "count", "every": 1, "name": "x\u0000y\u001b[31mred"}, "name"),
])
async def test_bad_schedules_are_refused_naming_the_field(bgtasks_app: Any, jp_fetch: Any,
                                                          body: dict[str, Any], field: str) -> None:
    for params in ({}, {"check_only": "true"}):
        code, err = await call(jp_fetch, "schedules", method="POST", body=body, params=params)
        assert (code, err.get("field")) == (400, field), err
    assert (await call(jp_fetch, "schedules"))[1]["schedules"] == []


@pytest.mark.parametrize(("change", "field"), [
    ({"every": 0.01}, "every"),
    ({"cron": "bad"}, "cron"),
    ({"kind": "sleep"}, "kind"),
    ({"overlap": None}, "overlap"),
    ({"enabled": "no"}, "enabled"),
    ({}, "body"),
    ({"params": {"times": -1}}, "params.times"),
])
async def test_a_refused_patch_changes_nothing(bgtasks_app: Any, jp_fetch: Any,
                                               change: dict[str, Any], field: str) -> None:
    body = {**EVERY, "every": 3600, "enabled": False}
    _, schedule = await call(jp_fetch, "schedules", method="POST", body=body)
    code, err = await call(jp_fetch, "schedules", schedule["id"], method="PATCH", body=change)
    assert (code, err.get("field")) == (400, field), err
    _, after = await call(jp_fetch, "schedules", schedule["id"])
    assert after == schedule


async def test_unknown_schedules_are_404(bgtasks_app: Any, jp_fetch: Any) -> None:
    for method, body in (("GET", None), ("PATCH", {"enabled": False}), ("DELETE", None)):
        code, err = await call(jp_fetch, "schedules", "0" * 32, method=method, body=body)
        assert code == 404 and "schedule" in err["message"]


async def test_schedule_changes_go_out_on_the_events_websocket(bgtasks_app: Any, jp_fetch: Any,
                                                                jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch(*API, "events")
    snapshot = json.loads(await ws.read_message())
    assert snapshot["type"] == "snapshot" and snapshot["schedules"] == []
    _, schedule = await call(jp_fetch, "schedules", method="POST",
                             body={**EVERY, "every": 3600})
    seen: list[dict[str, Any]] = []
    while not any(m.get("type") == "schedule" for m in seen):
        frame = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        seen.extend(frame if isinstance(frame, list) else [frame])
    msg = next(m for m in seen if m.get("type") == "schedule")
    assert msg["change"] == "created" and msg["schedule"]["id"] == schedule["id"]
    assert len(msg["schedule"]["next_runs"]) == 5
    ws.close()
