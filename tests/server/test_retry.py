"""``POST tasks/{id}/retry`` against a real server: a new task from an ended one's stored
spec and input, for every kind (a ``code`` task's pickled job included), and a clear
refusal for what cannot run again."""

from __future__ import annotations

import base64
import pickle
import sqlite3
import sys
from pathlib import Path
from typing import Any

import cloudpickle

from bgtasks_ext.kinds.code import CodeJob, CodeResult
from tests.server.test_rest import call, wait_state


def _code_body(source: str, cwd: Path, **extra: Any) -> dict[str, Any]:
    """A ``code`` task as ``%%bgtask`` sends it: the cell pickled, the interpreter, the cwd."""
    job = CodeJob(mode="cell", source=source, outputs=["text"])
    return {"kind": "code", "payload": base64.b64encode(cloudpickle.dumps(job)).decode(),
            "python": sys.executable, "cwd": str(cwd), **extra}


async def test_retry_of_a_failed_code_task_runs_the_stored_cell_again(
        bgtasks_app: Any, jp_fetch: Any, tmp_path: Path) -> None:
    # Given a cell task that failed: the file it reads was not there yet
    body = _code_body("text = open('input.txt').read()\ntext.upper()", tmp_path,
                      name="read input", timeout=60, retries=0,
                      origin={"kernel_id": "k-gone", "path": "work/a.ipynb"})
    code, old = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, old
    old = await wait_state(jp_fetch, old["id"], "failed", "finished", "cancelled")
    assert old["state"] == "failed" and old["error"]["type"] == "FileNotFoundError", old
    (tmp_path / "input.txt").write_text("hello")

    # When it is retried, with no body and no kernel anywhere
    code, new = await call(jp_fetch, "tasks", old["id"], "retry", method="POST", body="")

    # Then a new task with the same spec is created, and it names the old one
    assert code == 201, new
    assert new["id"] != old["id"] and new["state"] == "pending" and new["attempt"] == 1
    for key in ("kind", "name", "params", "executor", "timeout", "retries", "scope", "key"):
        assert new[key] == old[key], key
    assert new["origin"] == {**old["origin"], "retry_of": old["id"]}
    # And it runs the stored cell (the same interpreter, the same working directory)
    done = await wait_state(jp_fetch, new["id"], "finished", "failed", "cancelled")
    assert done["state"] == "finished", done
    resp = await jp_fetch("bgtasks", "api", "tasks", new["id"], "result",
                          headers={"Accept": "application/vnd.bgtasks.pickle"})
    result = pickle.loads(resp.body)
    assert isinstance(result, CodeResult)
    assert (result.value, result.outputs) == ("HELLO", {"text": "hello"})
    # And the old task is as it was
    assert (await call(jp_fetch, "tasks", old["id"]))[1] == old


async def test_retry_of_a_count_task_keeps_its_spec(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a cancelled count task with a name, parameters, a timeout and retries
    _, old = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "count", "name": "again", "params": {"times": 2, "interval": 0.01},
        "timeout": 30, "retries": 2, "executor": "thread", "run_on": "2999-01-01T00:00:00Z"})
    await call(jp_fetch, "tasks", old["id"], "cancel", method="POST", body="")
    old = await wait_state(jp_fetch, old["id"], "cancelled")
    # When retried
    code, new = await call(jp_fetch, "tasks", old["id"], "retry", method="POST", body="")
    # Then the copy runs now (no run_on) and finishes
    assert code == 201, new
    assert (new["name"], new["params"], new["timeout"], new["retries"], new["executor"]) == (
        "again", {"times": 2, "interval": 0.01}, 30.0, 2, "thread")
    assert new["run_on"] is None and new["origin"]["retry_of"] == old["id"]
    assert (await wait_state(jp_fetch, new["id"], "finished"))["result_preview"] == 2


async def test_a_live_task_cannot_be_retried(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a pending task
    _, task = await call(jp_fetch, "tasks", method="POST",
                         body={"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    # When retried / Then 409, naming its state, and nothing is created
    _, before = await call(jp_fetch, "tasks")
    code, err = await call(jp_fetch, "tasks", task["id"], "retry", method="POST", body="")
    assert code == 409 and "pending" in err["message"], err
    assert (await call(jp_fetch, "tasks"))[1] == before


async def test_a_kernel_executor_task_cannot_be_retried_by_the_server(
        bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given an ended task of the kernel executor (its code lives in its kernel)
    _, task = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "code", "executor": "kernel", "origin": {"kernel_id": "k-1"}})
    await call(jp_fetch, "tasks", task["id"], "cancel", method="POST", body="")
    await wait_state(jp_fetch, task["id"], "cancelled")
    # When retried / Then 409 saying why
    code, err = await call(jp_fetch, "tasks", task["id"], "retry", method="POST", body="")
    assert code == 409 and "kernel" in err["message"] and "cell again" in err["message"], err


async def test_a_task_whose_input_is_gone_is_410(
        bgtasks_app: Any, jp_fetch: Any, tmp_path: Path) -> None:
    # Given an ended code task whose stored input has been lost from the store
    _, task = await call(jp_fetch, "tasks", method="POST", body=_code_body("1", tmp_path))
    await wait_state(jp_fetch, task["id"], "finished")
    engine = bgtasks_app.web_app.settings["bgtasks_engine"]
    engine.flush()
    with sqlite3.connect(engine.store.path) as db:
        db.execute("DELETE FROM blobs WHERE task_id = ? AND name = 'input'", (task["id"],))
    # When retried / Then 410 with a message that says what to do
    code, err = await call(jp_fetch, "tasks", task["id"], "retry", method="POST", body="")
    assert code == 410 and "input" in err["message"], err


async def test_retry_of_a_key_held_by_a_live_task_returns_that_task(
        bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given an ended task with key K, and a live task now holding K
    _, old = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "sleep", "params": {"seconds": 0}, "key": "nightly", "executor": "thread"})
    await wait_state(jp_fetch, old["id"], "finished")
    _, holder = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "count", "key": "nightly", "run_on": "2999-01-01T00:00:00Z"})
    # When the old one is retried / Then, as a create: 200 and the live holder
    code, got = await call(jp_fetch, "tasks", old["id"], "retry", method="POST", body="")
    assert (code, got["id"]) == (200, holder["id"])
    # And once the holder has ended, a retry makes a new task
    await call(jp_fetch, "tasks", holder["id"], "cancel", method="POST", body="")
    await wait_state(jp_fetch, holder["id"], "cancelled")
    code, new = await call(jp_fetch, "tasks", old["id"], "retry", method="POST", body="")
    assert code == 201 and new["key"] == "nightly"


async def test_a_kernel_scope_task_whose_kernel_is_gone_is_retried_with_server_scope(
        bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given an ended kernel-scope task of a kernel this server does not run
    _, old = await call(jp_fetch, "tasks", method="POST", body={
        "kind": "sleep", "params": {"seconds": 0}, "scope": "kernel", "executor": "thread",
        "origin": {"kernel_id": "k-long-gone"}})
    await wait_state(jp_fetch, old["id"], "finished", "cancelled")
    # When retried / Then nothing could ever cancel it for its kernel: it runs as a server task
    code, new = await call(jp_fetch, "tasks", old["id"], "retry", method="POST", body="")
    assert code == 201 and new["scope"] == "server", new
    assert (await wait_state(jp_fetch, new["id"], "finished"))["state"] == "finished"


async def test_unknown_id_is_404(bgtasks_app: Any, jp_fetch: Any) -> None:
    code, err = await call(jp_fetch, "tasks", "nope", "retry", method="POST", body="")
    assert code == 404 and "nope" in err["message"]
