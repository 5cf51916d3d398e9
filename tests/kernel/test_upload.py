"""Inputs travel as raw bytes: ``POST tasks`` as multipart/form-data, against a real
server (a subprocess), with real worker processes loading the payload."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Iterator

import cloudpickle
import pytest
import requests

from bgtasks_ext.kernel.client import Client, ServerError, connect
from bgtasks_ext.kernel.handle import TaskHandle
from bgtasks_ext.kinds.code import CodeJob
from tests.kernel.conftest import Kernel
from tests.kernel.conftest import widget_text as _html_values
from tests.server_process import ServerProcess


@pytest.fixture
def client(bg_server: ServerProcess) -> Iterator[Client]:
    c = connect(bg_server.url, bg_server.token)
    yield c
    c.close()


def _job(data: bytes) -> bytes:
    return cloudpickle.dumps(CodeJob(mode="cell", source="n = len(data)\nn * 2", inputs={"data": data},
                                     outputs=["n"]))


def test_a_big_payload_travels_raw_and_reaches_the_worker(client: Client) -> None:
    # Given a cell whose input is 40 MB of incompressible bytes
    data = os.urandom(40 << 20)
    payload = _job(data)
    sent: list[int] = []
    # When it is created through the kernel's client
    task = client.create(kind="code", params={}, payload=payload, python=sys.executable,
                         cwd=os.getcwd(), on_sent=sent.append)
    # Then the bytes went out in slices, all of them, and a worker loaded them
    assert sent[-1] == len(payload) and len(sent) > 10 and sent == sorted(sent)
    handle = TaskHandle(task["id"], client)
    assert handle.result(60) == 2 * len(data)
    assert handle.result_object().outputs == {"n": len(data)}


def test_the_multipart_body_is_plain_form_data(bg_server: ServerProcess) -> None:
    # What curl -F spec=@spec.json -F payload=@job.pkl sends works too
    spec = {"kind": "code", "python": sys.executable}
    files = {"spec": (None, json.dumps(spec), "application/json"),
             "payload": ("job.pkl", _job(b"abc"), "application/octet-stream")}
    resp = requests.post(bg_server.api + "tasks", files=files, headers=bg_server.headers, timeout=30)
    assert resp.status_code == 201, resp.text
    assert bg_server.wait_end(resp.json()["id"])["state"] == "finished"


@pytest.mark.parametrize(("files", "field"), [
    ({"payload": ("p", b"x")}, "spec"),  # no spec at all
    ({"spec": (None, "{not json"), "payload": ("p", b"x")}, "body"),
    ({"spec": (None, json.dumps({"kind": "code", "payload": "eA=="})), "payload": ("p", b"x")},
     "payload"),  # the payload twice
    ({"spec": (None, json.dumps({"kind": "code"})), "other": ("p", b"x")}, "body"),
    ({"spec": (None, json.dumps({"kind": "count", "params": {"times": "3"}}))}, "params.times"),
])
def test_bad_multipart_bodies_are_400_naming_the_part(bg_server: ServerProcess, files: dict[str, Any],
                                                       field: str) -> None:
    before = bg_server.call("GET", "tasks").json()["tasks"]
    resp = requests.post(bg_server.api + "tasks", files=files, headers=bg_server.headers, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == field
    # And nothing was stored
    assert bg_server.call("GET", "tasks").json()["tasks"] == before


def test_a_truncated_multipart_body_is_400(bg_server: ServerProcess) -> None:
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"spec\"\r\n\r\n"
            '{"kind": "code"}\r\n'
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"payload\"; filename=\"p\"\r\n\r\n"
            "half a payload").encode()
    resp = requests.post(bg_server.api + "tasks", data=body, timeout=30, headers={
        **bg_server.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == "body"


def test_server_refusals_of_a_raw_payload_keep_their_message(client: Client) -> None:
    with pytest.raises(ServerError) as info:
        client.create(kind="code", params={}, payload=b"x" * 100, executor="thread")
    assert info.value.status == 400 and info.value.field == "executor"


# -- a notebook user's big input ----------------------------------------------------------


def test_a_cell_with_a_big_input_returns_while_it_is_sent(kernel: Kernel) -> None:
    kernel.execute_ok("%load_ext bgtasks_ext\nimport os\nblob = os.urandom(200_000_000)")
    # When a %%bgtask cell reads a 200 MB variable
    result = kernel.execute_ok("%%bgtask big\nsize = len(blob)")
    # Then the cell is back before the server has the task: the handle is still sending,
    # and its widget counts the bytes going out
    shown = [str(m["content"]) for m in kernel.messages
             if m["header"]["msg_type"] in ("comm_open", "comm_msg")]
    assert any("sending inputs: " in text and "of 200 MB" in text for text in shown)
    assert result.error is None
    assert kernel.wait_for(lambda: "sent" in _html_values(kernel), 60), _html_values(kernel)
    # And the task runs with those inputs: the output lands in the namespace
    assert kernel.eval("_.result(60) is None or True") is True
    kernel.execute_ok("import time\nfor _i in range(300):\n    if 'size' in globals(): break\n"
                      "    time.sleep(0.1)")
    assert kernel.eval("size") == 200_000_000
    assert "200 MB sent" in _html_values(kernel)


def test_a_refused_big_input_stops_the_cell_before_anything_is_sent(kernel: Kernel, rest: Any) -> None:
    kernel.execute_ok("%load_ext bgtasks_ext\nimport os\nblob = os.urandom(8 << 20)")
    before = rest("GET", "tasks", params={"limit": 1000}).json()["tasks"]
    # When the server would refuse the task (too many retries)
    result = kernel.execute("%%bgtask --retries 500\nn = len(blob)")
    # Then the cell fails at once with the server's message (so Run All stops there),
    # and no task was made
    assert result.reply is not None and result.reply["status"] == "error"
    assert result.reply["ename"] == "UsageError" and "retries" in result.reply["evalue"]
    assert rest("GET", "tasks", params={"limit": 1000}).json()["tasks"] == before


def test_a_failed_send_ends_the_handle_failed_with_the_servers_message(client: Client) -> None:
    from bgtasks_ext.kernel.client import ServerError as Refused

    def refuse(on_sent: Any) -> Any:
        on_sent(10)
        raise Refused(400, "retries: no", "retries")

    handle = TaskHandle.sending(client, refuse, size=8 << 20, name="refused")
    assert handle.wait(30) and handle.state == "failed"
    assert "retries" in handle.error["message"] and handle.sent_bytes == 0
    with pytest.raises(Exception, match="retries"):
        handle.result()


def test_cancel_while_sending_cancels_the_task_once_created(kernel: Kernel) -> None:
    kernel.execute_ok("%load_ext bgtasks_ext\nimport os\nblob = os.urandom(100 << 20)")
    kernel.execute_ok("%%bgtask slow\nimport time\ntime.sleep(60)\nn = len(blob)")
    kernel.execute_ok("h = _\nh.cancel()")
    assert kernel.eval("h.wait(60) and h.state") == "cancelled"


def test_a_payload_over_the_servers_body_limit_is_refused_with_a_message(tmp_path: Any) -> None:
    with ServerProcess(tmp_path, tmp_path / "tasks.sqlite",
                       server_config={"max_body_size": 2 << 20}) as server:
        # Over curl-like clients: a 413 naming payload, before the body is read
        resp = requests.post(server.api + "tasks", headers=server.headers, timeout=30, files={
            "spec": (None, json.dumps({"kind": "code"})), "payload": ("p", b"x" * (3 << 20))})
        assert resp.status_code == 413 and resp.json()["field"] == "payload"
        assert "max_body_size" in resp.json()["message"]
        # From a kernel's client: the same message, not "no server", when it asks first
        # (as a cell with big inputs does) and when it sends
        client = connect(server.url, server.token)
        try:
            with pytest.raises(ServerError) as asked:
                client.check(payload_size=3 << 20, kind="code", python=sys.executable)
            assert asked.value.status == 413 and asked.value.field == "payload"
            client.check(payload_size=1 << 20, kind="code", python=sys.executable)  # fits
            with pytest.raises(ServerError) as info:
                client.create(kind="code", payload=b"x" * (8 << 20), python=sys.executable)
            assert info.value.status == 413 and info.value.field == "payload"
            assert "max_body_size" in str(info.value)
            # And the server still works
            assert client.list(limit=1)["tasks"] == []
        finally:
            client.close()
