"""``PUT tasks/{id}/note``: what a task's notebook says about it, against a real server:
set in every state, served by every read, carried on the events websocket, kept to the
task's end and across a restart, bad values refused naming ``note``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess

from .test_events import connect, recv
from .test_rest import call, wait_state


async def put_note(jp_fetch: Any, task_id: str, note: Any, **kw: Any) -> tuple[int, Any]:
    return await call(jp_fetch, "tasks", task_id, "note", method="PUT", body={"note": note}, **kw)


async def create(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    code, task = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, task
    return task  # type: ignore[no-any-return]


async def test_a_note_on_a_running_task_shows_everywhere_and_lasts_to_its_end(
    bgtasks_app: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    # Given a counting task under way, and a client of the events websocket
    ws, _ = await connect(jp_ws_fetch)
    task = await create(jp_fetch, {"kind": "count", "params": {"times": 15, "interval": 0.1}})
    running = await wait_state(jp_fetch, task["id"], "running")
    assert running["note"] is None
    # When the notebook sets its note
    code, noted = await put_note(jp_fetch, task["id"], "outputs set: a, b")
    # Then the reply is the task with its note, still running, nothing else of it changed
    assert code == 200 and noted["note"] == "outputs set: a, b"
    assert (noted["id"], noted["state"], noted["attempt"]) == (task["id"], "running", 1)
    # And every read shows it: the task, the listing
    _, got = await call(jp_fetch, "tasks", task["id"])
    assert got["note"] == "outputs set: a, b"
    _, page = await call(jp_fetch, "tasks", params={"category": "pending"})
    assert [t["note"] for t in page["tasks"] if t["id"] == task["id"]] == ["outputs set: a, b"]
    # And the websocket carried it as a "note" change of the full task
    seen: list[dict[str, Any]] = []
    while not any(m.get("change") == "note" for m in seen):
        seen += [m for m in await recv(ws) if m.get("task", {}).get("id") == task["id"]]
    note_msg = next(m for m in seen if m["change"] == "note")
    assert note_msg["type"] == "task" and note_msg["task"]["note"] == "outputs set: a, b"
    assert note_msg["task"]["state"] == "running" and isinstance(note_msg["seq"], int)
    # And the task goes on as before (its progress, result) and ends with its note
    done = await wait_state(jp_fetch, task["id"], "finished")
    assert done["note"] == "outputs set: a, b"
    assert done["result_preview"] == 15 and done["progress"]["current"] == 15
    code, log = await call(jp_fetch, "tasks", task["id"], "log")
    assert "round 15 of 15" in log["text"]
    ws.close()


async def test_pending_and_finished_tasks_take_a_note_and_null_or_empty_clears_it(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    # Given a task waiting for its run_on time and a finished one
    later = await create(jp_fetch, {"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    ended = await create(jp_fetch, {"kind": "count", "params": {"times": 1}})
    finished = await wait_state(jp_fetch, ended["id"], "finished")
    # When each gets a note
    code, pending = await put_note(jp_fetch, later["id"], "superseded task 0193")
    assert code == 200 and (pending["state"], pending["note"]) == ("pending", "superseded task 0193")
    code, noted = await put_note(jp_fetch, ended["id"], "line one\n\tline two")
    # Then the finished task's record is as it was, with the note
    assert code == 200 and noted == {**finished, "note": "line one\n\tline two"}
    _, page = await call(jp_fetch, "tasks", params={"category": "finished"})
    assert [t["note"] for t in page["tasks"]] == ["line one\n\tline two"]
    code, result = await call(jp_fetch, "tasks", ended["id"], "result")
    assert code == 200 and result["preview"] == 1
    # And null or "" clears a note
    for task_id, clear in ((later["id"], None), (ended["id"], "")):
        code, cleared = await put_note(jp_fetch, task_id, clear)
        assert code == 200 and cleared["note"] is None
        assert (await call(jp_fetch, "tasks", task_id))[1]["note"] is None
    assert (await call(jp_fetch, "tasks", ended["id"]))[1] == finished


@pytest.mark.parametrize("body", [
    {"note": "x" * 1001},
    {"note": 5},
    {"note": True},
    {"note": ["a"]},
    {"note": {"text": "a"}},
    {"note": "bell\x07"},
    {"note": "redraw\rline"},
    {"note": "esc\x1b[2J"},
    {"note": "c1\x85"},
    {},
    {"note": "a", "extra": 1},
])
async def test_a_bad_note_is_400_naming_it_and_changes_nothing(
    bgtasks_app: Any, jp_fetch: Any, body: dict[str, Any]
) -> None:
    # Given a finished task with a note
    task = await create(jp_fetch, {"kind": "count", "params": {"times": 1}})
    await wait_state(jp_fetch, task["id"], "finished")
    code, before = await put_note(jp_fetch, task["id"], "kept")
    assert code == 200
    # When a bad note is sent
    code, err = await call(jp_fetch, "tasks", task["id"], "note", method="PUT", body=body)
    # Then 400 naming the field at fault, and the task is as it was
    assert code == 400, err
    assert err["field"] == ("extra" if "extra" in body else "note"), err
    assert (await call(jp_fetch, "tasks", task["id"]))[1] == before


async def test_a_body_that_is_not_a_json_object_is_400(bgtasks_app: Any, jp_fetch: Any) -> None:
    task = await create(jp_fetch, {"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    for body in ("", "not json", '"text"', "null", "[]"):
        code, err = await call(jp_fetch, "tasks", task["id"], "note", method="PUT", body=body)
        assert (code, err["field"]) == (400, "body"), (body, err)


async def test_the_longest_note_is_taken(bgtasks_app: Any, jp_fetch: Any) -> None:
    task = await create(jp_fetch, {"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    code, noted = await put_note(jp_fetch, task["id"], "é" * 1000)
    assert code == 200 and noted["note"] == "é" * 1000


async def test_a_note_for_an_unknown_task_is_404(bgtasks_app: Any, jp_fetch: Any) -> None:
    code, err = await put_note(jp_fetch, "no-such-task", "x")
    assert code == 404 and "no-such-task" in err["message"]


async def test_the_kernel_secret_sets_a_note(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a task, and a kernel's credentials (no Jupyter token, no XSRF cookie)
    task = await create(jp_fetch, {"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    secret = bgtasks_app.web_app.settings["bgtasks_kernel_secret"]
    # When the kernel sets the note / Then it is taken
    code, noted = await put_note(jp_fetch, task["id"], "outputs set: n",
                                 headers={"Authorization": f"bgtasks {secret}"})
    assert code == 200 and noted["note"] == "outputs set: n"
    # While a wrong secret is refused and changes nothing
    code, _ = await put_note(jp_fetch, task["id"], "forged",
                             headers={"Authorization": "bgtasks not-the-secret"})
    assert code in (401, 403)
    assert (await call(jp_fetch, "tasks", task["id"]))[1]["note"] == "outputs set: n"


async def test_notes_set_at_once_on_a_busy_task_all_land_in_order(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a running task that reports progress all the while
    task = await create(jp_fetch, {"kind": "count", "params": {"times": 30, "interval": 0.05}})
    await wait_state(jp_fetch, task["id"], "running")
    # When notes are set one after another, some at the same time
    for i in range(3):
        await asyncio.gather(*(put_note(jp_fetch, task["id"], f"n{i}-{j}") for j in range(3)))
    code, last = await put_note(jp_fetch, task["id"], "last")
    # Then the last one is the task's note, to its end
    assert code == 200 and last["note"] == "last"
    done = await wait_state(jp_fetch, task["id"], "finished")
    assert done["note"] == "last" and done["result_preview"] == 30


def test_a_note_survives_a_server_restart(tmp_path: Path) -> None:
    store = tmp_path / "store" / "tasks.sqlite"
    # Given a finished task and a pending one, each with a note
    with ServerProcess(tmp_path / "one", store) as server:
        done = server.call("POST", "tasks", json={"kind": "count", "params": {"times": 1}}).json()
        server.wait_end(done["id"])
        later = server.call("POST", "tasks", json={"kind": "count", "run_on": "2999-01-01T00:00:00Z"}).json()
        for task_id, note in ((done["id"], "outputs set: a"), (later["id"], "waiting")):
            resp = server.call("PUT", f"tasks/{task_id}/note", json={"note": note})
            assert resp.status_code == 200, resp.text
    # When the server is started again on the same data
    with ServerProcess(tmp_path / "two", store) as server:
        # Then both notes are there
        assert server.call("GET", f"tasks/{done['id']}").json()["note"] == "outputs set: a"
        task = server.call("GET", f"tasks/{later['id']}").json()
        assert (task["state"], task["note"]) == ("pending", "waiting")
