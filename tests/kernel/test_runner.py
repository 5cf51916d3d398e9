"""The kernel executor: a thread in the user's kernel, registered with the server."""

from __future__ import annotations

import time
from typing import Callable

import requests

from tests.kernel.conftest import Kernel


def wait_state(rest: Callable[..., requests.Response], task_id: str, states: set[str],
               timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = rest("GET", f"tasks/{task_id}").json()
        if task["state"] in states:
            return task
        assert time.monotonic() < deadline, f"{task_id} still {task['state']}"
        time.sleep(0.05)


def test_kernel_executor_sees_live_objects(kernel: Kernel, rest: Callable[..., requests.Response]) -> None:
    # Given live objects that cannot be pickled: a lock, and a list to mutate
    kernel.execute_ok("import threading\nlock = threading.Lock()\nbox = []")
    # When a function using them runs on the kernel executor
    task_id = kernel.eval("""(lambda h: (h.result(timeout=20), h.id)[1])(
        __import__('bgtasks_ext').submit(lambda: box.append(lock.acquire(blocking=False)) or len(box),
                                         executor='kernel'))""")
    # Then it acted on the very objects of the kernel, and the server recorded it
    assert kernel.eval("[box, lock.locked()]") == [[True], True]
    task = rest("GET", f"tasks/{task_id}").json()
    assert task["executor"] == "kernel" and task["state"] == "finished"
    assert task["result_preview"] == {"value": 1, "outputs": []}


def test_a_cell_runs_in_the_user_namespace(kernel: Kernel) -> None:
    # Given a name in the namespace
    kernel.execute_ok("x = 21")
    # When a cell job runs on the kernel executor
    kernel.execute_ok("""
from bgtasks_ext.kernel.api import launch
from bgtasks_ext.kinds.code import CodeJob
h = launch(CodeJob(mode="cell", source="y = x * 2\\nprint('in the log')\\ny + 1", outputs=["y"]),
           executor="kernel", name="cell")
value = h.result(timeout=20)
""")
    # Then its assignment is in the namespace, its value came back, and print went to its log
    assert kernel.eval("[y, value]") == [42, 43]
    assert "in the log" in kernel.eval("h.log()")


def test_progress_is_visible_over_rest_and_cancel_is_cooperative(
        kernel: Kernel, rest: Callable[..., requests.Response]) -> None:
    # Given a kernel task that reports progress
    task_id = kernel.eval("""__import__('bgtasks_ext').submit(
        lambda: [__import__('bgtasks_ext').progress(i, 1000) or __import__('time').sleep(0.02)
                 for i in range(1000)], executor='kernel', name='steps').id""")
    # Then the server sees it running and moving
    wait_state(rest, task_id, {"running"})
    deadline = time.monotonic() + 10
    while rest("GET", f"tasks/{task_id}").json()["progress"]["current"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # When it is cancelled over REST
    assert rest("POST", f"tasks/{task_id}/cancel").status_code == 202
    # Then it stops as cancelled, by its own progress() call (well before the grace)
    task = wait_state(rest, task_id, {"cancelled", "failed", "finished"}, timeout=10)
    assert task["state"] == "cancelled"


def test_code_that_never_checks_is_interrupted_after_the_grace(
        kernel: Kernel, rest: Callable[..., requests.Response]) -> None:
    # Given a kernel task that never calls progress() or cancelled()
    kernel.execute_ok("""
import time
def stubborn():
    while True:
        time.sleep(0.01)
""")
    task_id = kernel.eval("__import__('bgtasks_ext').submit(stubborn, executor='kernel').id")
    wait_state(rest, task_id, {"running"})
    # When it is cancelled
    rest("POST", f"tasks/{task_id}/cancel")
    # Then an asynchronous exception ends it, and the kernel still works
    task = wait_state(rest, task_id, {"cancelled", "failed", "finished"}, timeout=15)
    assert task["state"] == "cancelled"
    assert kernel.eval("1 + 1") == 2
    threads = kernel.eval("[t.name for t in __import__('threading').enumerate()]")
    assert not [n for n in threads if n.startswith("bgtasks-kernel-")]
