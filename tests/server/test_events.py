"""The events websocket against a real server: real websocket clients, real engine."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection

from .test_rest import call, wait_state

EVENTS = ("bgtasks", "api", "events")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["BgTasks"]["extra_kinds"] = [
        "tests.core.engine_kinds:steps", "tests.core.engine_kinds:echo",
    ]
    return jp_server_config


async def recv(ws: WebSocketClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    """The messages of the next frame (one object, or an array of them)."""
    text = await asyncio.wait_for(ws.read_message(), timeout)
    assert text is not None, f"socket closed: {ws.close_code} {ws.close_reason}"
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


async def connect(jp_ws_fetch: Any, **kw: Any) -> tuple[WebSocketClientConnection, dict[str, Any]]:
    ws = await jp_ws_fetch(*EVENTS, **kw)
    (snapshot,) = await recv(ws)
    assert snapshot["type"] == "snapshot"
    return ws, snapshot


async def life_of(ws: WebSocketClientConnection, task_id: str, until: str = "finished") -> list[dict[str, Any]]:
    """Every message about ``task_id`` until its state is ``until``."""
    seen: list[dict[str, Any]] = []
    while not (seen and seen[-1]["task"]["state"] == until and seen[-1]["change"] != "progress"):
        seen += [m for m in await recv(ws) if m["task"]["id"] == task_id]
    return seen


async def create(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    code, task = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, task
    return task  # type: ignore[no-any-return]


def hub(app: Any) -> Any:
    return app.web_app.settings["bgtasks_events"]


async def test_snapshot_holds_the_live_tasks(bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    # Given a running task and one waiting for its run_on time
    running = await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 30}, "executor": "thread"})
    await wait_state(jp_fetch, running["id"], "running")
    later = await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 0}, "run_on": time.time() + 3600})
    # When a client connects
    ws, snapshot = await connect(jp_ws_fetch)
    # Then its first message is the snapshot of both, numbered by the engine
    states = {t["id"]: t["state"] for t in snapshot["tasks"]}
    assert states == {running["id"]: "running", later["id"]: "pending"}
    assert isinstance(snapshot["seq"], int) and snapshot["seq"] >= 3
    ws.close()


async def test_a_task_life_arrives_in_order(bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    ws, snapshot = await connect(jp_ws_fetch)
    # When a counting task runs
    task = await create(jp_fetch, {"kind": "count", "params": {"times": 3, "interval": 0.1}})
    life = await life_of(ws, task["id"])
    # Then its whole life arrives: created, running, progress..., finished
    assert [(m["change"], m["task"]["state"]) for m in life if m["change"] != "progress"] == [
        ("created", "pending"), ("state", "running"), ("state", "finished")]
    # (the last progress may ride on the finished state, which supersedes it)
    currents = [m["task"]["progress"]["current"] for m in life if m["change"] != "created"]
    assert currents == sorted(currents) and currents[-1] == 3
    seqs = [m["seq"] for m in life]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and seqs[0] > snapshot["seq"]
    assert all(m["type"] == "task" for m in life)
    assert life[-1]["task"]["result_preview"] == 3 and life[-1]["task"]["finished_at"]
    ws.close()


async def test_fast_progress_is_coalesced_to_a_steady_rate(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    ws, _ = await connect(jp_ws_fetch)
    # Given a task reporting progress about a thousand times a second for 2 s
    task = await create(jp_fetch, {"kind": "steps", "params": {"n": 2000, "pause": 0.001},
                                   "executor": "thread"})
    # When its messages are read as they come
    stamps: list[float] = []
    currents: list[float] = []
    life: list[dict[str, Any]] = []
    while not (life and life[-1]["change"] == "state" and life[-1]["task"]["state"] == "finished"):
        frame = [m for m in await recv(ws) if m["task"]["id"] == task["id"]]
        life += frame
        for m in frame:
            if m["change"] == "progress":
                stamps.append(time.monotonic())
                currents.append(m["task"]["progress"]["current"])
    # Then progress moved steadily: 10 to 25 messages a second, never going back
    window = stamps[-1] - stamps[0]
    assert window >= 1.0, window
    rate = (len(stamps) - 1) / window
    assert 10 <= rate <= 25, (rate, len(stamps), window)
    assert currents == sorted(currents) and currents[-1] <= 2000
    assert life[-1]["task"]["progress"]["current"] == 2000
    ws.close()


async def test_deleting_a_terminal_task_is_an_event(bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    task = await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"})
    await wait_state(jp_fetch, task["id"], "finished")
    ws, snapshot = await connect(jp_ws_fetch)
    assert task["id"] not in {t["id"] for t in snapshot["tasks"]}
    # When the finished task is deleted
    code, _ = await call(jp_fetch, "tasks", task["id"], method="DELETE")
    assert code == 204
    # Then clients hear of it
    (msg,) = await recv(ws)
    assert (msg["change"], msg["task"]["id"], msg["task"]["state"]) == ("deleted", task["id"], "finished")
    assert msg["seq"] > snapshot["seq"]
    ws.close()


async def test_many_clients_see_the_same_sequence(bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    # Given six clients
    clients = [(await connect(jp_ws_fetch))[0] for _ in range(6)]
    assert hub(bgtasks_app).client_count == 6
    # When tasks run, one of them fast with progress
    fast = await create(jp_fetch, {"kind": "steps", "params": {"n": 300, "pause": 0.002}, "executor": "thread"})
    slow = await create(jp_fetch, {"kind": "count", "params": {"times": 3, "interval": 0.05}})
    # Then all of them see the very same messages in the very same order
    lives = []
    for ws in clients:
        seen: list[dict[str, Any]] = []
        done: set[str] = set()
        while done != {fast["id"], slow["id"]}:
            for m in await recv(ws):
                seen.append(m)
                if m["change"] == "state" and m["task"]["state"] == "finished":
                    done.add(m["task"]["id"])
        lives.append([(m["seq"], m["change"], m["task"]["id"], m["task"]["progress"]["current"])
                      for m in seen])
    assert all(life == lives[0] for life in lives[1:])
    assert len(lives[0]) >= 8
    for ws in clients:
        ws.close()


async def test_no_upgrade_without_auth(bgtasks_app: Any, jp_ws_fetch: Any) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "bgtasks not-the-secret"}):
        with pytest.raises(HTTPClientError) as exc:
            await jp_ws_fetch(*EVENTS, headers=headers)
        assert exc.value.code == 403
    assert hub(bgtasks_app).client_count == 0


async def test_kernel_secret_subscribes(bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any) -> None:
    secret = bgtasks_app.web_app.settings["bgtasks_kernel_secret"]
    ws, _ = await connect(jp_ws_fetch, headers={"Authorization": f"bgtasks {secret}"})
    task = await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"})
    assert (await life_of(ws, task["id"]))[-1]["task"]["state"] == "finished"
    ws.close()


async def test_closed_clients_are_cleaned_up(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # Given clients that leave, one of them while a task keeps it busy
    busy = await create(jp_fetch, {"kind": "steps", "params": {"n": 500, "pause": 0.002}, "executor": "thread"})
    clients = [(await connect(jp_ws_fetch))[0] for _ in range(3)]
    await recv(clients[0])
    for ws in clients:
        ws.close()
    # Then the hub forgets them, and events flowing on hurt nothing
    for _ in range(200):
        if hub(bgtasks_app).client_count == 0:
            break
        await asyncio.sleep(0.02)
    assert hub(bgtasks_app).client_count == 0
    await wait_state(jp_fetch, busy["id"], "finished")
    ws, _ = await connect(jp_ws_fetch)
    assert hub(bgtasks_app).client_count == 1
    ws.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_a_client_that_stops_reading_is_dropped(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    h = hub(bgtasks_app)
    h.max_buffer, h.slow_grace = 2**20, 0.5
    # Given a client that never reads and one that does
    stuck, _ = await connect(jp_ws_fetch)
    reader, _ = await connect(jp_ws_fetch)
    ended: set[str] = set()

    async def read_all() -> None:
        while True:
            ended.update(m["task"]["id"] for m in await recv(reader)
                         if m["change"] == "state" and m["task"]["state"] == "finished")

    reading = asyncio.create_task(read_all())
    # When megabytes of events flow (tasks with 200 kB parameters)
    big = "x" * 200_000
    ids = {(await create(jp_fetch, {"kind": "echo", "params": {"value": big}, "executor": "thread"}))["id"]
           for _ in range(60)}
    for _ in range(400):
        if ids <= ended or reading.done():
            break
        await asyncio.sleep(0.05)
    reading.cancel()
    assert ids <= ended
    # Then the stuck one is closed with a reason, the reader kept everything
    for _ in range(100):
        if h.client_count == 1:
            break
        await asyncio.sleep(0.05)
    assert h.client_count == 1
    while await asyncio.wait_for(stuck.read_message(), 20) is not None:
        pass
    assert stuck.close_code == 1013 and "reconnect" in (stuck.close_reason or "")
    reader.close()


async def test_stopping_the_extension_closes_clients(bgtasks_app: Any, jp_ws_fetch: Any) -> None:
    ws, _ = await connect(jp_ws_fetch)
    # When the extension stops (as when the server shuts down)
    (app,) = bgtasks_app.extension_manager.extension_apps["bgtasks_ext"]
    await app.stop_extension()
    # Then clients are told, and nobody new gets in
    assert await asyncio.wait_for(ws.read_message(), 10) is None
    assert ws.close_code == 1001
    assert hub(bgtasks_app).client_count == 0
    with pytest.raises(HTTPClientError) as exc:
        await jp_ws_fetch(*EVENTS)
    assert exc.value.code == 503
