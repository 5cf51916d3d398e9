"""The kernel-side client and the Python API (submit/attach/handle), against a real server."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest

from bgtasks_ext.kernel.client import (Client, NoServer, ServerError, TaskConflict, TaskNotFound,
                                       connect)
from bgtasks_ext.kernel.handle import TaskHandle
from tests.kernel.conftest import Kernel
from tests.server_process import ServerProcess


@pytest.fixture
def client(bg_server: ServerProcess) -> Iterator[Client]:
    c = connect(bg_server.url, bg_server.token)  # a Jupyter token: the "token" scheme
    yield c
    c.close()


# -- the HTTP client, in this process ----------------------------------------------------
def test_connect_with_a_jupyter_token_and_crud(client: Client) -> None:
    # Given a client connected with the server's Jupyter token
    assert client.scheme == "token"
    # When a task is created, read, listed and cancelled
    task = client.create(kind="count", params={"times": 50, "interval": 0.1}, executor="thread")
    assert client.get(task["id"])["id"] == task["id"]
    assert task["id"] in [t["id"] for t in client.list(limit=20)["tasks"]]
    assert client.cancel(task["id"])["id"] == task["id"]
    # Then its kinds and log are readable too
    assert "count" in [k["name"] for k in client.kinds()]
    assert set(client.log(task["id"])) >= {"text", "next_offset"}


def test_server_errors_keep_their_message(client: Client) -> None:
    # Unknown id: 404 with the server's message
    with pytest.raises(TaskNotFound, match="no task"):
        client.get("nope")
    # Bad input: 400 naming the field
    with pytest.raises(ServerError) as info:
        client.create(kind="count", params={"times": -1})
    assert info.value.status == 400 and info.value.field
    # A transition that is not allowed: 409
    task = client.create(kind="count", params={"times": 0}, executor="thread")
    TaskHandle(task["id"], client).wait(10)
    with pytest.raises(TaskConflict):
        client.cancel(task["id"])


def test_an_unreachable_server_is_no_server() -> None:
    with pytest.raises(NoServer, match="no bgtasks server"):
        connect("http://127.0.0.1:9/", "x" * 20)


def test_events_push_every_change_to_watchers(client: Client) -> None:
    # Given a watcher on a new task
    seen: list[dict[str, Any]] = []
    ended = threading.Event()

    def on_change(task: dict[str, Any]) -> None:
        seen.append(task)
        if task["state"] == "finished":
            ended.set()
    task = client.create(kind="count", params={"times": 4, "interval": 0.1}, executor="thread")
    unwatch = client.watch(task["id"], on_change)
    # When it runs to the end
    assert ended.wait(15), client.events.errors
    unwatch()
    # Then the watcher saw its progress move and its end, in the events thread
    currents = [t["progress"]["current"] for t in seen if t["state"] == "running"]
    assert currents and currents == sorted(currents)
    assert client.events.connected.is_set()


def test_a_watcher_added_after_the_end_still_sees_it(client: Client) -> None:
    task = client.create(kind="count", params={"times": 0}, executor="thread")
    handle = TaskHandle(task["id"], client)
    assert handle.wait(10)
    late: list[str] = []
    client.watch(task["id"], lambda t: late.append(t["state"]))
    deadline = time.monotonic() + 5
    while "finished" not in late and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "finished" in late


# -- the Python API, in a kernel started by the server ----------------------------------
def test_submit_returns_the_functions_value(kernel: Kernel) -> None:
    # Given a function defined in the notebook (it travels by value)
    # When it is submitted to the default (process) executor
    value = kernel.eval("""(lambda: (
        __import__('bgtasks_ext').submit(lambda a, b=0: {"sum": a + b}, 2, b=3).result(timeout=60)))()""",
                        timeout=90)
    # Then result() is what it returned
    assert value == {"sum": 5}


def test_submit_errors_come_back_with_the_remote_traceback(kernel: Kernel) -> None:
    result = kernel.execute("""
from bgtasks_ext import submit, TaskFailed
def inner():
    raise KeyError("missing-thing")
h = submit(inner, executor="process")
try:
    h.result(timeout=30)
except TaskFailed as exc:
    print("TYPE", exc.type)
    print("TB", "inner" in exc.traceback and "missing-thing" in exc.traceback)
    print("CAUSE", type(exc.__cause__).__name__)
""", timeout=60)
    assert result.error is None, result.error_text
    assert "TYPE KeyError" in result.text
    assert "TB True" in result.text
    assert "CAUSE RemoteTraceback" in result.text


def test_result_timeout_and_cancel(kernel: Kernel) -> None:
    result = kernel.execute("""
import time
from bgtasks_ext import submit, TaskCancelled
def slow():
    from bgtasks_ext import progress
    for i in range(600):
        progress(i, 600)
        time.sleep(0.05)
h = submit(slow, executor="process", name="slow one")
try:
    h.result(timeout=0.3)
except TimeoutError as exc:
    print("TIMEOUT", exc)
h.cancel()
try:
    h.result(timeout=20)
except TaskCancelled:
    print("CANCELLED", h.state)
""", timeout=60)
    assert result.error is None, result.error_text
    assert "TIMEOUT task" in result.text and "slow one" in result.text
    assert "CANCELLED cancelled" in result.text


def test_submitted_tasks_carry_their_kernel(kernel: Kernel, client: Client) -> None:
    task_id = kernel.eval("__import__('bgtasks_ext').submit(abs, -1, executor='process').id")
    task = client.get(task_id)
    assert task["origin"]["kernel_id"] == kernel.id
    assert task["name"] == "abs"


def test_importing_the_package_stays_light() -> None:
    # Workers import bgtasks_ext: the notebook API must load only when asked for.
    import subprocess
    import sys
    code = ("import sys, bgtasks_ext; heavy = [m for m in ('IPython', 'ipywidgets', 'tornado') "
            "if m in sys.modules]; assert not heavy, heavy; bgtasks_ext.submit; bgtasks_ext.attach; "
            "bgtasks_ext.connect; assert 'ipywidgets' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
