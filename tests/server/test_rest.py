"""The REST API against a real server (pytest-jupyter), real engine, real SQLite file."""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

API = ("bgtasks", "api")


async def call(jp_fetch: Any, *path: str, method: str = "GET", body: Any = None,
               params: dict[str, Any] | None = None, **kw: Any) -> tuple[int, Any]:
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    resp = await jp_fetch(*API, *path, method=method, body=body, params=params or {},
                          raise_error=False, allow_nonstandard_methods=True, **kw)
    text = resp.body.decode() if resp.body else ""
    return resp.code, (json.loads(text) if text else None)


async def wait_state(jp_fetch: Any, task_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
    for _ in range(int(timeout / 0.05)):
        code, task = await call(jp_fetch, "tasks", task_id)
        assert code == 200
        if task["state"] in states:
            return task  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"task never reached {states}: {task}")


async def test_create_run_and_read_a_task(bgtasks_app: Any, jp_fetch: Any) -> None:
    # When a count task is created over REST
    code, task = await call(jp_fetch, "tasks", method="POST",
                            body={"kind": "count", "params": {"times": 3, "interval": 0.05}, "name": "three"})
    # Then it is 201 with the SPEC's record
    assert code == 201
    assert {"id", "name", "kind", "params", "state", "category", "progress", "created_at", "started_at",
            "finished_at", "owner", "origin", "key", "scope", "executor", "schedule_id", "attempt",
            "retries", "timeout", "error", "result_preview"} <= task.keys()
    assert (task["state"], task["category"], task["name"]) == ("pending", "pending", "three")
    assert task["created_at"].endswith("Z")
    done = await wait_state(jp_fetch, task["id"], "finished")
    assert done["progress"]["fraction"] == 1.0 and done["result_preview"] == 3
    # And its log, result and listing are served
    code, log = await call(jp_fetch, "tasks", task["id"], "log")
    assert code == 200 and "round 3 of 3" in log["text"]
    code, log2 = await call(jp_fetch, "tasks", task["id"], "log", params={"offset": log["next_offset"]})
    assert log2["text"] == "" and log2["next_offset"] == log["next_offset"]
    code, result = await call(jp_fetch, "tasks", task["id"], "result")
    assert code == 200 and result["preview"] == 3
    resp = await jp_fetch(*API, "tasks", task["id"], "result",
                          headers={"Accept": "application/vnd.bgtasks.pickle"})
    assert pickle.loads(resp.body) == 3
    code, listing = await call(jp_fetch, "tasks", params={"category": "finished"})
    assert [t["id"] for t in listing["tasks"]] == [task["id"]]


async def test_list_is_newest_first_and_paginated(bgtasks_app: Any, jp_fetch: Any) -> None:
    ids = []
    for i in range(5):
        _, t = await call(jp_fetch, "tasks", method="POST",
                          body={"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"})
        ids.append(t["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "kind": "sleep"} | ({"cursor": cursor} if cursor else {})
        code, page = await call(jp_fetch, "tasks", params=params)
        assert code == 200
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]


async def test_singleton_key_returns_200_with_the_live_task(bgtasks_app: Any, jp_fetch: Any) -> None:
    body = {"kind": "sleep", "params": {"seconds": 30}, "key": "nightly", "executor": "thread"}
    code1, first = await call(jp_fetch, "tasks", method="POST", body=body)
    code2, second = await call(jp_fetch, "tasks", method="POST", body=body)
    assert (code1, code2) == (201, 200) and first["id"] == second["id"]
    await call(jp_fetch, "tasks", first["id"], "cancel", method="POST", body="")


async def test_cancel_and_delete_semantics(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a running task
    _, task = await call(jp_fetch, "tasks", method="POST", body={"kind": "count", "params": {"times": 100, "interval": 0.1}})
    await wait_state(jp_fetch, task["id"], "running")
    # When cancelled / Then 202 and it lands in the failed category as cancelled
    code, cancelling = await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    assert code == 202 and cancelling["state"] in ("cancelling", "cancelled")
    done = await wait_state(jp_fetch, task["id"], "cancelled")
    assert done["category"] == "failed"
    # When cancelled again (terminal) / Then 409
    code, err = await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    assert code == 409 and "cancelled" in err["message"]
    # When a terminal task is deleted / Then 204 and it is gone
    code, _ = await call(jp_fetch, "tasks", task["id"], method="DELETE")
    assert code == 204
    assert (await call(jp_fetch, "tasks", task["id"]))[0] == 404
    # Given a pending (delayed) task / When deleted / Then 202, cancelled, nothing of it runs
    _, later = await call(jp_fetch, "tasks", method="POST",
                          body={"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    code, gone = await call(jp_fetch, "tasks", later["id"], method="DELETE")
    assert code == 202 and gone["state"] == "cancelled" and gone["category"] == "failed"


async def test_unknown_ids_are_404(bgtasks_app: Any, jp_fetch: Any) -> None:
    for path, method in [(("tasks", "nope"), "GET"), (("tasks", "nope", "cancel"), "POST"),
                         (("tasks", "nope"), "DELETE"), (("tasks", "nope", "log"), "GET"),
                         (("tasks", "nope", "result"), "GET")]:
        code, err = await call(jp_fetch, *path, method=method, body="" if method == "POST" else None)
        assert code == 404, path
        assert "nope" in err["message"]


async def test_kinds_with_schemas(bgtasks_app: Any, jp_fetch: Any) -> None:
    code, data = await call(jp_fetch, "kinds")
    kinds = {k["name"]: k for k in data["kinds"]}
    assert code == 200 and {"count", "sleep"} <= kinds.keys()
    assert kinds["count"]["schema"]["properties"]["times"]["type"] == "integer"


async def test_kinds_say_which_need_a_kernel_so_clients_need_no_list_of_their_own(
        bgtasks_app: Any, jp_fetch: Any) -> None:
    # When a client (the panel's New task form) reads the kinds
    _, data = await call(jp_fetch, "kinds")
    kinds = {k["name"]: k for k in data["kinds"]}
    # Then code (made by %%bgtask) says it needs a payload and a kernel; count needs neither
    assert kinds["code"]["needs_payload"] is True and kinds["code"]["needs_kernel"] is True
    assert kinds["count"]["needs_payload"] is False and kinds["count"]["needs_kernel"] is False


@pytest.mark.parametrize(
    "body,field",
    [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ({"params": {}}, "kind"),
        ({"kind": "nope"}, "kind"),
        ({"kind": "count", "params": {"times": "many"}}, "params.times"),
        ({"kind": "count", "params": {"times": -1}}, "params.times"),
        ({"kind": "count", "params": []}, "params"),
        ({"kind": "count", "run_on": "next tuesday"}, "run_on"),
        ({"kind": "count", "timeout": 0}, "timeout"),
        ({"kind": "count", "timeout": "soon"}, "timeout"),
        ({"kind": "count", "retries": -2}, "retries"),
        ({"kind": "count", "executor": "gpu"}, "executor"),
        ({"kind": "count", "scope": "galaxy"}, "scope"),
        ({"kind": "count", "key": ""}, "key"),
        ({"kind": "count", "colour": "blue"}, "colour"),
        ({"kind": "count", "origin": {"kernel_id": 5}}, "origin.kernel_id"),
        ({"kind": "count", "name": "x\u0000y"}, "name"),
        ({"kind": "count", "name": "\u001b[31mred"}, "name"),
        ({"kind": "count", "name": "two\nlines"}, "name"),
    ],
)
async def test_bad_create_is_400_naming_the_field_and_harms_nothing(
    bgtasks_app: Any, jp_fetch: Any, body: Any, field: str
) -> None:
    # Given a stored task
    _, kept = await call(jp_fetch, "tasks", method="POST", body={"kind": "sleep", "params": {"seconds": 0}})
    kept = await wait_state(jp_fetch, kept["id"], "finished")
    _, before = await call(jp_fetch, "tasks")
    # When a bad create arrives / Then 400 naming the field
    code, err = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 400, err
    assert err["field"] == field, err
    assert field.split(".")[0] in err["message"]
    # And nothing stored changed
    _, after = await call(jp_fetch, "tasks")
    assert after == before
    assert (await call(jp_fetch, "tasks", kept["id"]))[1] == kept


@pytest.mark.parametrize(
    "params,field",
    [({"state": "sleeping"}, "state"), ({"category": "odd"}, "category"), ({"limit": "x"}, "limit"),
     ({"limit": 0}, "limit"), ({"limit": 100000}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
async def test_bad_list_query_is_400(bgtasks_app: Any, jp_fetch: Any, params: dict[str, Any], field: str) -> None:
    code, err = await call(jp_fetch, "tasks", params=params)
    assert code == 400 and err["field"] == field


async def test_bad_log_offset_is_400(bgtasks_app: Any, jp_fetch: Any) -> None:
    _, task = await call(jp_fetch, "tasks", method="POST", body={"kind": "sleep", "params": {"seconds": 0}})
    for offset in ("x", "-1"):
        code, err = await call(jp_fetch, "tasks", task["id"], "log", params={"offset": offset})
        assert code == 400 and err["field"] == "offset"


async def test_result_of_unfinished_task_is_409(bgtasks_app: Any, jp_fetch: Any) -> None:
    _, task = await call(jp_fetch, "tasks", method="POST", body={"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    code, err = await call(jp_fetch, "tasks", task["id"], "result")
    assert code == 409


async def test_no_route_answers_without_auth(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given requests with no token at all
    for path, method in [(("tasks",), "GET"), (("tasks",), "POST"), (("kinds",), "GET"),
                         (("tasks", "x"), "GET"), (("tasks", "x"), "DELETE"),
                         (("tasks", "x", "cancel"), "POST"), (("tasks", "x", "log"), "GET"),
                         (("tasks", "x", "result"), "GET")]:
        code, _ = await call(jp_fetch, *path, method=method, body="{}" if method == "POST" else None,
                             headers={"Authorization": ""})
        # Then each is refused
        assert code in (401, 403), (path, method, code)


async def test_kernel_secret_opens_only_bgtasks_routes(bgtasks_app: Any, jp_fetch: Any) -> None:
    secret = bgtasks_app.web_app.settings["bgtasks_kernel_secret"]
    headers = {"Authorization": f"bgtasks {secret}"}
    # The secret works on our routes, writes included (no XSRF cookie needed)
    code, task = await call(jp_fetch, "tasks", method="POST", headers=headers,
                            body={"kind": "sleep", "params": {"seconds": 0}})
    assert code == 201 and task["owner"] not in ("kernel", "")  # the server's user: test_owner.py
    assert (await call(jp_fetch, "kinds", headers=headers))[0] == 200
    # A wrong secret does not
    assert (await call(jp_fetch, "kinds", headers={"Authorization": "bgtasks wrong"}))[0] in (401, 403)
    # And the secret opens nothing else of the server
    for path in (("api", "contents"), ("api", "kernels"), ("api", "sessions")):
        with pytest.raises(HTTPClientError) as exc:
            await jp_fetch(*path, headers=headers)
        assert exc.value.code in (401, 403)


async def test_kernels_get_the_url_and_secret_and_the_server_keeps_neither(bgtasks_app: Any) -> None:
    import os
    from pathlib import Path

    # When the server starts a kernel
    km = bgtasks_app.kernel_manager
    kernel_id = await km.start_kernel()
    try:
        pid = km.get_kernel(kernel_id).provisioner.pid
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().partition("=")[::2] for item in raw if item)
        # Then the kernel's environment holds the URL and the secret
        assert env["BGTASKS_TOKEN"] == bgtasks_app.web_app.settings["bgtasks_kernel_secret"]
        assert env["BGTASKS_URL"].endswith("/bgtasks/api/")
    finally:
        await km.shutdown_kernel(kernel_id, now=True)
    # And the server's own environment (what terminals and workers inherit) does not
    assert "BGTASKS_TOKEN" not in os.environ and "BGTASKS_URL" not in os.environ
