"""What a kernel sends: code tasks with a payload, interpreter and cwd; and the REST
routes through which a kernel runs its own ``executor: kernel`` tasks (claim, progress,
log, done). Against a real server (pytest-jupyter), real engine, real worker process."""

from __future__ import annotations

import asyncio
import base64
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from bgtasks_ext.core.constants import PICKLE_TYPE
from bgtasks_ext.kinds.code import CodeJob, CodeResult
from tests.server.test_rest import API, call, wait_state

KERNEL = {"kernel_id": "kernel-1", "path": "work.ipynb"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def kernel_task(jp_fetch: Any, **extra: Any) -> dict[str, Any]:
    body = {"kind": "code", "executor": "kernel", "origin": KERNEL, "name": "in the kernel", **extra}
    code, task = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, task
    return task  # type: ignore[no-any-return]


async def result_bytes(jp_fetch: Any, task_id: str) -> bytes:
    resp = await jp_fetch(*API, "tasks", task_id, "result", headers={"Accept": PICKLE_TYPE})
    assert resp.headers["Content-Type"] == PICKLE_TYPE
    return resp.body  # type: ignore[no-any-return]


# -- code tasks: payload, python, cwd ------------------------------------------------
async def test_a_code_task_runs_its_payload_under_the_given_python_and_cwd(
    bgtasks_app: Any, jp_fetch: Any, tmp_path: Path
) -> None:
    # Given a cell, its inputs and the names to send back, pickled as a kernel does
    (tmp_path / "data.txt").write_text("from the kernel's folder")
    job = CodeJob(
        source="import os, sys\n"
               "text = open('data.txt').read()\n"  # a relative path: the cwd counts
               "where, exe = os.getcwd(), sys.executable\n"
               "y = x * 2\n"
               "y + 1\n",
        inputs={"x": 20},
        outputs=["y", "text", "where", "exe", "never_bound"],
    )
    body = {"kind": "code", "executor": "process", "payload": b64(cloudpickle.dumps(job)),
            "python": sys.executable, "cwd": str(tmp_path)}
    # When it is created and runs
    code, task = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, task
    done = await wait_state(jp_fetch, task["id"], "finished", "failed", "cancelled")
    # Then it finished in a worker of that interpreter, in that directory
    assert done["state"] == "finished", done["error"]
    assert done["result_preview"] == {"value": 41, "outputs": ["exe", "text", "where", "y"]}
    # And the pickled result is what the kernel unpickles: the value and the outputs
    result = pickle.loads(await result_bytes(jp_fetch, task["id"]))
    assert isinstance(result, CodeResult)
    assert result.value == 41
    assert result.outputs["y"] == 40 and result.outputs["text"] == "from the kernel's folder"
    assert os.path.samefile(result.outputs["where"], tmp_path)
    assert os.path.samefile(result.outputs["exe"], sys.executable)
    assert result.outputs["exe"] == sys.executable  # the interpreter named, not a resolved link
    assert "never_bound" not in result.outputs


async def test_a_code_task_that_raises_fails_with_its_traceback(bgtasks_app: Any, jp_fetch: Any) -> None:
    job = CodeJob(source="a = 1\nraise KeyError('missing ' + str(a))\n", filename="<cell 7>")
    _, task = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "code", "executor": "process", "payload": b64(cloudpickle.dumps(job))})
    done = await wait_state(jp_fetch, task["id"], "finished", "failed", "cancelled")
    assert done["state"] == "failed"
    assert done["error"]["type"] == "KeyError" and "missing 1" in done["error"]["message"]
    assert "<cell 7>" in done["error"]["traceback"]


@pytest.mark.parametrize("body,field", [
    ({"kind": "code", "payload": "not base64!"}, "payload"),
    ({"kind": "code", "payload": "YWJ"}, "payload"),  # unpadded
    ({"kind": "code", "payload": 12}, "payload"),
    ({"kind": "code"}, "payload"),
    ({"kind": "code", "payload": None}, "payload"),
    ({"kind": "code", "payload": "YWJj", "python": "python3"}, "python"),
    ({"kind": "code", "payload": "YWJj", "python": "/no/such/python"}, "python"),
    ({"kind": "code", "payload": "YWJj", "python": "/"}, "python"),
    ({"kind": "code", "payload": "YWJj", "cwd": "/no/such/folder"}, "cwd"),
    ({"kind": "code", "payload": "YWJj", "cwd": "relative/folder"}, "cwd"),
    ({"kind": "code", "payload": "YWJj", "cwd": sys.executable}, "cwd"),  # a file
    ({"kind": "code", "executor": "kernel"}, "executor"),
    ({"kind": "code", "executor": "kernel", "origin": {"path": "a.ipynb"}}, "executor"),
    ({"kind": "code", "executor": "kernel", "origin": KERNEL, "retries": 2}, "retries"),
])
async def test_bad_new_fields_are_400_naming_the_field_and_harm_nothing(
    bgtasks_app: Any, jp_fetch: Any, body: dict[str, Any], field: str
) -> None:
    # Given a stored task
    _, kept = await call(jp_fetch, "tasks", method="POST",
                         body={"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"})
    await wait_state(jp_fetch, kept["id"], "finished")
    _, before = await call(jp_fetch, "tasks")
    # When a bad create arrives / Then 400 naming the field
    code, err = await call(jp_fetch, "tasks", method="POST", body=body)
    assert (code, err.get("field")) == (400, field), err
    assert err["message"].startswith(field + ":")
    # And nothing was created or changed
    _, after = await call(jp_fetch, "tasks")
    assert after == before


# -- the kernel executor, driven as a kernel drives it -----------------------------------
async def test_a_kernel_task_waits_for_its_kernel_then_runs_as_it_reports(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    # Given a kernel-executor task (no payload: the kernel holds the job itself), and the
    # kernel's credentials (what a kernel started by this server has in BGTASKS_TOKEN)
    task = await kernel_task(jp_fetch)
    auth = {"headers": {"Authorization": f"bgtasks {bgtasks_app.web_app.settings['bgtasks_kernel_secret']}"}}
    assert (task["executor"], task["origin"], task["state"]) == (
        "kernel", {**KERNEL, "retry_of": None}, "pending")
    # Then nothing runs it: it waits for its kernel
    await asyncio.sleep(0.3)
    assert (await call(jp_fetch, "tasks", task["id"]))[1]["state"] == "pending"
    # When the kernel claims it / Then it is running
    code, claimed = await call(jp_fetch, "tasks", task["id"], "claim", method="POST", **auth, body="")
    assert (code, claimed["state"]) == (200, "running") and claimed["started_at"]
    # When it reports progress and log / Then both are recorded
    code, nothing = await call(jp_fetch, "tasks", task["id"], "progress", method="POST", **auth,
                               body={"current": 3, "total": 10, "message": "step 3"})
    assert (code, nothing) == (204, None)
    code, _ = await call(jp_fetch, "tasks", task["id"], "progress", method="POST", **auth, body={"current": 4.5})
    assert code == 204
    for text in ("hello\n", "world\n"):
        code, _ = await call(jp_fetch, "tasks", task["id"], "log", method="POST", body={"text": text}, **auth)
        assert code == 204
    _, now = await call(jp_fetch, "tasks", task["id"])
    assert now["progress"] == {"current": 4.5, "total": None, "fraction": None, "message": "step 3"}
    _, logged = await call(jp_fetch, "tasks", task["id"], "log")
    assert logged["text"] == "hello\nworld\n"
    # When it reports done with opaque result bytes (not even a pickle)
    opaque = b"\x00 not a pickle: the server must never load it \xff"
    code, done = await call(jp_fetch, "tasks", task["id"], "done", method="POST", **auth, body={
        "status": "finished", "preview": {"value": 41, "outputs": ["y"]}, "result": b64(opaque)})
    # Then it is finished with that preview, and the bytes come back untouched
    assert (code, done["state"]) == (200, "finished")
    assert done["result_preview"] == {"value": 41, "outputs": ["y"]}
    assert await result_bytes(jp_fetch, task["id"]) == opaque
    # And a second claim or a late report changes nothing
    code, err = await call(jp_fetch, "tasks", task["id"], "claim", method="POST", **auth, body="")
    assert code == 409 and "not pending" in err["message"]
    code, again = await call(jp_fetch, "tasks", task["id"], "done", method="POST", **auth,
                             body={"status": "failed", "error": {"type": "E", "message": "late"}})
    assert (code, again["state"], again["error"]) == (200, "finished", None)


async def test_a_kernel_task_that_fails_keeps_the_kernels_traceback(bgtasks_app: Any, jp_fetch: Any) -> None:
    task = await kernel_task(jp_fetch)
    await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    error = {"type": "ZeroDivisionError", "message": "division by zero",
             "traceback": "Traceback (most recent call last):\n  ...\nZeroDivisionError"}
    code, done = await call(jp_fetch, "tasks", task["id"], "done", method="POST",
                            body={"status": "failed", "error": error})
    assert (code, done["state"]) == (200, "failed")
    assert done["error"] == {**error, "reason": None}


async def test_a_kernel_task_error_keeps_what_the_code_said_it_left(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a kernel task whose code raised with bgtasks_data (as run_attempt reports it)
    task = await kernel_task(jp_fetch)
    await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    error = {"type": "E", "message": "m", "traceback": "", "data": {"executed_copy": "r.ipynb"}}
    # When the kernel reports it / Then the record keeps the data (not a 400)
    code, done = await call(jp_fetch, "tasks", task["id"], "done", method="POST",
                            body={"status": "failed", "error": error})
    assert (code, done["state"]) == (200, "failed")
    assert done["error"] == {**error, "reason": None}


async def test_cancelling_a_running_kernel_task_waits_for_the_kernel(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a kernel task that its kernel runs
    task = await kernel_task(jp_fetch)
    await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    # When it is cancelled over REST / Then it is cancelling (what the kernel watches for)
    code, cancelling = await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    assert (code, cancelling["state"]) == (202, "cancelling")
    await asyncio.sleep(0.3)
    assert (await call(jp_fetch, "tasks", task["id"]))[1]["state"] == "cancelling"
    # When the kernel has stopped it and says so / Then it is cancelled
    code, done = await call(jp_fetch, "tasks", task["id"], "done", method="POST", body={"status": "cancelled"})
    assert (code, done["state"]) == (200, "cancelled")


async def test_a_kernel_task_cancelled_before_its_claim_is_never_run(bgtasks_app: Any, jp_fetch: Any) -> None:
    task = await kernel_task(jp_fetch)
    code, cancelled = await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    assert (code, cancelled["state"]) == (202, "cancelled")
    code, err = await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    assert code == 409, err
    # (and a done before any claim is refused too)
    other = await kernel_task(jp_fetch)
    code, err = await call(jp_fetch, "tasks", other["id"], "done", method="POST", body={"status": "finished"})
    assert code == 409 and "pending" in err["message"]
    assert (await call(jp_fetch, "tasks", other["id"]))[1]["state"] == "pending"


@pytest.mark.parametrize("route,body", [
    ("claim", ""),
    ("progress", {"current": 1}),
    ("log", {"text": "hi"}),
    ("done", {"status": "finished"}),
])
async def test_kernel_routes_on_any_other_task_are_409(
    bgtasks_app: Any, jp_fetch: Any, route: str, body: Any
) -> None:
    # Given a task that a server worker runs
    _, task = await call(jp_fetch, "tasks", method="POST",
                         body={"kind": "sleep", "params": {"seconds": 30}, "executor": "thread"})
    running = await wait_state(jp_fetch, task["id"], "running")
    # When a kernel route is used on it / Then 409, and the task runs on untouched
    code, err = await call(jp_fetch, "tasks", task["id"], route, method="POST", body=body)
    assert code == 409 and "'thread' executor" in err["message"], err
    _, now = await call(jp_fetch, "tasks", task["id"])
    assert now["state"] == "running" and now["started_at"] == running["started_at"]
    _, logged = await call(jp_fetch, "tasks", task["id"], "log")
    assert "hi" not in logged["text"]
    await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    # And on an unknown id: 404
    code, err = await call(jp_fetch, "tasks", "no-such-task", route, method="POST", body=body)
    assert code == 404 and "no-such-task" in err["message"]


@pytest.mark.parametrize("route,body,field", [
    ("progress", {"current": "3"}, "current"),
    ("progress", {"current": None}, "current"),
    ("progress", {}, "current"),
    ("progress", {"current": 1, "total": "ten"}, "total"),
    ("progress", {"current": 1, "message": 5}, "message"),
    ("progress", {"current": 1, "colour": "blue"}, "colour"),
    ("log", {"text": 5}, "text"),
    ("log", {}, "text"),
    ("done", {"status": "exploded"}, "status"),
    ("done", {}, "status"),
    ("done", {"status": "finished", "result": "not base64!"}, "result"),
    ("done", {"status": "failed", "error": {"type": "E"}}, "error.message"),
    ("done", "{not json", "body"),
])
async def test_bad_kernel_reports_are_400_naming_the_field_and_harm_nothing(
    bgtasks_app: Any, jp_fetch: Any, route: str, body: Any, field: str
) -> None:
    # Given a running kernel task with some progress and log
    task = await kernel_task(jp_fetch)
    await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    await call(jp_fetch, "tasks", task["id"], "progress", method="POST", body={"current": 2, "total": 4})
    await call(jp_fetch, "tasks", task["id"], "log", method="POST", body={"text": "before\n"})
    _, before = await call(jp_fetch, "tasks", task["id"])
    # When a bad report arrives / Then 400 naming the field
    code, err = await call(jp_fetch, "tasks", task["id"], route, method="POST", body=body)
    assert (code, err.get("field")) == (400, field), err
    # And the task is as it was
    _, after = await call(jp_fetch, "tasks", task["id"])
    assert after == before and after["state"] == "running"
    _, logged = await call(jp_fetch, "tasks", task["id"], "log")
    assert logged["text"] == "before\n"


async def test_a_result_beyond_64_bits_leaves_the_task_list_readable(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a kernel task whose value is int('9' * 400) (`%bgtask int('9' * 400)`)
    task = await kernel_task(jp_fetch)
    await call(jp_fetch, "tasks", task["id"], "claim", method="POST", body="")
    huge = int("9" * 400)
    code, done = await call(jp_fetch, "tasks", task["id"], "done", method="POST",
                            body={"status": "finished", "preview": huge})
    assert (code, done["result_preview"]) == (200, huge)
    # When the history is listed and the task read, after its record was stored
    await asyncio.sleep(0.3)
    code, page = await call(jp_fetch, "tasks", params={"limit": "10"})
    # Then both answer (it was a 500 for every page holding it, for good)
    assert code == 200 and [t["result_preview"] for t in page["tasks"] if t["id"] == task["id"]] == [huge]
    code, one = await call(jp_fetch, "tasks", task["id"])
    assert code == 200 and one["result_preview"] == huge
