"""Live logs over the events websocket (``follow_log``), against a real server: the text a
task prints reaches a follower as it is printed, coalesced, without any ``GET log``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import WebSocketClientConnection

from .test_events import connect, create, hub, recv
from .test_rest import call, wait_state


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["BgTasks"]["extra_kinds"] = [
        "tests.server.log_kinds:chatty", "tests.server.log_kinds:gated",
    ]
    return jp_server_config


async def send(ws: WebSocketClientConnection, msg: Any) -> None:
    await ws.write_message(msg if isinstance(msg, str) else json.dumps(msg))


async def next_of(ws: WebSocketClientConnection, kind: str, timeout: float = 20) -> dict[str, Any]:
    """The next message of type ``kind`` (task messages pass by meanwhile)."""
    while True:
        for m in await recv(ws, timeout):
            if m["type"] == kind:
                return m


async def follow_to_end(ws: WebSocketClientConnection, task_id: str) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    while not (msgs and msgs[-1]["end"]):
        m = await next_of(ws, "log")
        assert m["id"] == task_id
        msgs.append(m)
    return msgs


def text_of(msgs: list[dict[str, Any]]) -> str:
    """The log the messages spell, checking that they join up."""
    for a, b in zip(msgs, msgs[1:]):
        assert b["offset"] == a["next_offset"], (a, b)
    for m in msgs:
        assert m["next_offset"] - m["offset"] == len(m["text"]), m
    return "".join(m["text"] for m in msgs)


async def test_a_followed_log_arrives_as_it_is_printed_then_ends(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    # Given a task that printed a line and now waits for a gate
    gate = tmp_path / "gate"
    task = await create(jp_fetch, {"kind": "gated", "params": {"gate": str(gate)}})
    ws, _ = await connect(jp_ws_fetch)
    # When its log is followed from the start
    await send(ws, {"type": "follow_log", "id": task["id"], "offset": 0})
    # Then the line printed so far arrives while the task still runs
    first = await next_of(ws, "log")
    assert (first["id"], first["offset"], first["text"], first["end"]) == (
        task["id"], 0, "before the gate\n", False)
    assert (await call(jp_fetch, "tasks", task["id"]))[1]["state"] == "running"
    # When it prints more and ends
    gate.touch()
    rest = await follow_to_end(ws, task["id"])
    # Then the rest follows on from where the first message stopped, and the last says end
    assert text_of([first, *rest]) == "before the gate\nafter the gate\n"
    assert rest[-1]["end"] is True
    await wait_state(jp_fetch, task["id"], "finished")
    # And the follow is over: the server keeps nothing of it
    assert hub(bgtasks_app).logs._followers == {}
    ws.close()


async def test_fast_prints_are_coalesced_and_nothing_is_lost(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    ws, _ = await connect(jp_ws_fetch)
    # Given a task printing 3,000 lines, a line every half millisecond
    task = await create(jp_fetch, {"kind": "chatty", "params": {"lines": 3000, "pause": 0.0005},
                                   "executor": "thread"})
    # When its log is followed until it ends
    await send(ws, {"type": "follow_log", "id": task["id"]})
    msgs = await follow_to_end(ws, task["id"])
    # Then far fewer messages than prints arrived, and together they are the whole log
    assert len(msgs) < 300, len(msgs)
    text = text_of(msgs)
    assert text == "".join(f"line {i:05d}\n" for i in range(3000))
    assert msgs[0]["offset"] == 0
    code, rest = await call(jp_fetch, "tasks", task["id"], "log")
    assert code == 200 and rest["text"] == text
    ws.close()


async def test_an_ended_task_is_sent_from_the_offset_asked_at_once(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    # Given a task that printed 20 lines and finished
    task = await create(jp_fetch, {"kind": "chatty", "params": {"lines": 20}})
    await wait_state(jp_fetch, task["id"], "finished")
    ws, _ = await connect(jp_ws_fetch)
    # When two sockets follow it, one from the start and one from line 15
    other, _ = await connect(jp_ws_fetch)
    await send(ws, {"type": "follow_log", "id": task["id"], "offset": 0})
    await send(other, {"type": "follow_log", "id": task["id"], "offset": 15 * 11})
    # Then each gets its part, and that it is the end
    (whole,) = await follow_to_end(ws, task["id"])
    (tail,) = await follow_to_end(other, task["id"])
    assert whole["text"] == "".join(f"line {i:05d}\n" for i in range(20)) and whole["end"]
    assert (tail["offset"], tail["text"]) == (165, "".join(f"line {i:05d}\n" for i in range(15, 20)))
    ws.close()
    other.close()


async def test_unfollow_stops_the_messages(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    task = await create(jp_fetch, {"kind": "gated", "params": {"gate": str(gate)}})
    ws, _ = await connect(jp_ws_fetch)
    await send(ws, {"type": "follow_log", "id": task["id"]})
    assert (await next_of(ws, "log"))["text"] == "before the gate\n"
    # When the client unfollows, then the task prints and ends
    await send(ws, {"type": "unfollow_log", "id": task["id"]})
    await asyncio.sleep(0.2)  # the unfollow is read before the gate opens
    gate.touch()
    await wait_state(jp_fetch, task["id"], "finished")
    # Then the socket hears of the task's end but gets no more of its log
    seen: list[dict[str, Any]] = []
    while not any(m["type"] == "task" and m["task"]["state"] == "finished" for m in seen):
        seen += await recv(ws)
    await asyncio.sleep(0.5)  # a log message would have come by now: the follow was coalesced at 0.1 s
    assert hub(bgtasks_app).logs._followers == {}
    assert [m for m in seen if m["type"] == "log"] == []
    ws.close()


@pytest.mark.parametrize(("raw", "field"), [
    ("not json", "body"),
    ("[1, 2]", "body"),
    (json.dumps({"type": "shout", "id": "x"}), "type"),
    (json.dumps({"type": "follow_log"}), "id"),
    (json.dumps({"type": "follow_log", "id": 7}), "id"),
    (json.dumps({"type": "follow_log", "id": "x" * 65}), "id"),
    (json.dumps({"type": "follow_log", "id": "x", "offset": -1}), "offset"),
    (json.dumps({"type": "follow_log", "id": "x", "offset": True}), "offset"),
    (json.dumps({"type": "follow_log", "id": "x", "offset": 1.5}), "offset"),
    (json.dumps({"type": "follow_log", "id": "x", "colour": "red"}), "colour"),
    ("x" * 5000, "body"),
])
async def test_bad_messages_get_an_error_naming_the_field(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any, raw: str, field: str
) -> None:
    ws, _ = await connect(jp_ws_fetch)
    # When a client sends something the server cannot take
    await send(ws, raw)
    # Then it is told which field is wrong, and the socket stays usable
    error = await next_of(ws, "error")
    assert error["field"] == field and error["message"]
    task = await create(jp_fetch, {"kind": "chatty", "params": {"lines": 1}, "executor": "thread"})
    await send(ws, {"type": "follow_log", "id": task["id"]})
    assert text_of(await follow_to_end(ws, task["id"])) == "line 00000\n"
    ws.close()


async def test_an_unknown_task_is_an_error_for_that_id(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    ws, _ = await connect(jp_ws_fetch)
    await send(ws, {"type": "follow_log", "id": "0" * 32})
    error = await next_of(ws, "error")
    assert (error["field"], error["id"]) == ("id", "0" * 32) and "no task" in error["message"]
    assert hub(bgtasks_app).logs._followers == {}
    ws.close()


async def test_a_closed_socket_stops_following(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    task = await create(jp_fetch, {"kind": "gated", "params": {"gate": str(gate)}})
    ws, _ = await connect(jp_ws_fetch)
    await send(ws, {"type": "follow_log", "id": task["id"]})
    await next_of(ws, "log")
    # When the socket closes while following
    ws.close()
    for _ in range(200):
        if hub(bgtasks_app).client_count == 0:
            break
        await asyncio.sleep(0.02)
    # Then the follow is forgotten
    assert hub(bgtasks_app).logs._followers == {}
    gate.touch()
    await wait_state(jp_fetch, task["id"], "finished")
