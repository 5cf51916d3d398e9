"""The server watches its kernels: when one shuts down, restarts or dies, its tasks of
the kernel executor fail as interrupted and its kernel-scope tasks are cancelled; other
tasks, and the tasks the kernel launches after a restart, are left alone.

Real kernels, started by the server's own kernel manager (pytest-jupyter server)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, Awaitable, Callable

import pytest

from bgtasks_ext.server.kernels import KERNEL_ACTIONS, KernelWatcher
from tests.server.test_rest import call, wait_state

Ended = Callable[[Any, Any, str], Awaitable[None]]


async def start_kernel(app: Any) -> str:
    kernel_id: str = await app.kernel_manager.start_kernel()
    return kernel_id


async def create(jp_fetch: Any, body: dict[str, Any]) -> dict[str, Any]:
    code, task = await call(jp_fetch, "tasks", method="POST", body=body)
    assert code == 201, task
    return task  # type: ignore[no-any-return]


async def tasks_of(jp_fetch: Any, kernel_id: str, other_kernel: str) -> dict[str, dict[str, Any]]:
    """One task of every relevant shape, launched from ``kernel_id`` (and two that are not
    tied to it), each in its steady state."""
    origin = {"kernel_id": kernel_id, "path": "nb.ipynb"}
    t = {
        "kernel_running": await create(jp_fetch, {"kind": "code", "executor": "kernel", "origin": origin}),
        "kernel_pending": await create(jp_fetch, {"kind": "code", "executor": "kernel", "origin": origin}),
        "kernel_cancelling": await create(jp_fetch, {"kind": "code", "executor": "kernel", "origin": origin}),
        "scope_running": await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 60},
                                                 "executor": "thread", "scope": "kernel", "origin": origin}),
        "scope_pending": await create(jp_fetch, {"kind": "count", "run_on": "2999-01-01T00:00:00Z",
                                                 "scope": "kernel", "origin": origin}),
        "server_scope": await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 60},
                                                "executor": "thread", "origin": origin}),
        "other_kernel": await create(jp_fetch, {"kind": "code", "executor": "kernel",
                                                "origin": {"kernel_id": other_kernel}}),
    }
    for name in ("kernel_running", "kernel_cancelling", "other_kernel"):
        code, _ = await call(jp_fetch, "tasks", t[name]["id"], "claim", method="POST", body="")
        assert code == 200
    await call(jp_fetch, "tasks", t["kernel_cancelling"]["id"], "cancel", method="POST", body="")
    await wait_state(jp_fetch, t["scope_running"]["id"], "running")
    await wait_state(jp_fetch, t["server_scope"]["id"], "running")
    return t


async def assert_ended_as_expected(jp_fetch: Any, t: dict[str, dict[str, Any]], within: float,
                                   how: str) -> None:
    start = time.monotonic()
    running = await wait_state(jp_fetch, t["kernel_running"]["id"], "failed", "cancelled", "finished",
                               timeout=within)
    assert time.monotonic() - start < within
    assert running["state"] == "failed"
    assert running["error"]["reason"] == "interrupted"
    assert running["error"]["type"] == "Interrupted"
    assert "kernel went away" in running["error"]["message"] and how in running["error"]["message"]
    expect = {"kernel_pending": "cancelled", "kernel_cancelling": "cancelled",
              "scope_running": "cancelled", "scope_pending": "cancelled"}
    for name, state in expect.items():
        task = await wait_state(jp_fetch, t[name]["id"], "failed", "cancelled", "finished", timeout=10)
        assert task["state"] == state, (name, task)
    # Not tied to that kernel's life: still running
    for name in ("server_scope", "other_kernel"):
        assert (await call(jp_fetch, "tasks", t[name]["id"]))[1]["state"] == "running", name


async def cleanup(jp_fetch: Any, t: dict[str, dict[str, Any]]) -> None:
    for name in ("server_scope", "other_kernel"):
        await call(jp_fetch, "tasks", t[name]["id"], "cancel", method="POST", body="")
    await call(jp_fetch, "tasks", t["other_kernel"]["id"], "done", method="POST", body={"status": "cancelled"})


async def rest_shutdown(app: Any, jp_fetch: Any, kernel_id: str) -> None:
    resp = await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert resp.code == 204


async def rest_restart(app: Any, jp_fetch: Any, kernel_id: str) -> None:
    resp = await jp_fetch("api", "kernels", kernel_id, "restart", method="POST", body="")
    assert resp.code == 200


async def manager_shutdown(app: Any, jp_fetch: Any, kernel_id: str) -> None:
    await app.kernel_manager.shutdown_kernel(kernel_id)


async def manager_restart(app: Any, jp_fetch: Any, kernel_id: str) -> None:
    await app.kernel_manager.restart_kernel(kernel_id)


@pytest.mark.parametrize("end,how", [
    (rest_shutdown, "shut down"),
    (rest_restart, "restarted"),
    (manager_shutdown, "shut down"),
    (manager_restart, "restarted"),
], ids=["rest-shutdown", "rest-restart", "manager-shutdown", "manager-restart"])
async def test_a_kernel_that_shuts_down_or_restarts_ends_its_tasks(
    bgtasks_app: Any, jp_fetch: Any, end: Ended, how: str
) -> None:
    # Given a kernel of this server and tasks tied to it (and some that are not)
    kernel_id = await start_kernel(bgtasks_app)
    t = await tasks_of(jp_fetch, kernel_id, other_kernel="elsewhere")
    # When the kernel shuts down or restarts
    await end(bgtasks_app, jp_fetch, kernel_id)
    # Then at once: kernel-executor tasks interrupted, kernel-scope tasks cancelled
    await assert_ended_as_expected(jp_fetch, t, within=3, how=how)
    await cleanup(jp_fetch, t)


async def test_tasks_a_restarted_kernel_launches_afterwards_live_on(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a kernel that restarted, its old tasks ended
    kernel_id = await start_kernel(bgtasks_app)
    old = await create(jp_fetch, {"kind": "code", "executor": "kernel", "origin": {"kernel_id": kernel_id}})
    await call(jp_fetch, "tasks", old["id"], "claim", method="POST", body="")
    await rest_restart(bgtasks_app, jp_fetch, kernel_id)
    assert (await wait_state(jp_fetch, old["id"], "failed", timeout=3))["error"]["reason"] == "interrupted"
    # When the new kernel process launches tasks
    new = await create(jp_fetch, {"kind": "code", "executor": "kernel", "origin": {"kernel_id": kernel_id}})
    await call(jp_fetch, "tasks", new["id"], "claim", method="POST", body="")
    scoped = await create(jp_fetch, {"kind": "sleep", "params": {"seconds": 60}, "executor": "thread",
                                     "scope": "kernel", "origin": {"kernel_id": kernel_id}})
    # Then they outlive several looks at the kernels
    await asyncio.sleep(2.5)
    assert (await call(jp_fetch, "tasks", new["id"]))[1]["state"] == "running"
    assert (await call(jp_fetch, "tasks", scoped["id"]))[1]["state"] == "running"
    # Until that kernel goes away too
    await rest_shutdown(bgtasks_app, jp_fetch, kernel_id)
    assert (await wait_state(jp_fetch, new["id"], "failed", timeout=3))["error"]["reason"] == "interrupted"
    assert (await wait_state(jp_fetch, scoped["id"], "cancelled", timeout=3))["state"] == "cancelled"


async def test_a_kernel_that_dies_fails_its_kernel_tasks_within_seconds(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a kernel of this server and tasks tied to it
    kernel_id = await start_kernel(bgtasks_app)
    t = await tasks_of(jp_fetch, kernel_id, other_kernel="elsewhere")
    # When its process is killed (no shutdown, no event: it just dies)
    km = bgtasks_app.kernel_manager.get_kernel(kernel_id)
    os.kill(km.provisioner.pid, signal.SIGKILL)
    # Then within a few seconds its tasks end as if it had shut down
    await assert_ended_as_expected(jp_fetch, t, within=5, how="died")
    await cleanup(jp_fetch, t)


async def test_other_kernels_and_unknown_kernels_are_left_alone(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given two kernels, and a task from a kernel this server does not run (connect())
    first, second = await start_kernel(bgtasks_app), await start_kernel(bgtasks_app)
    t = await tasks_of(jp_fetch, first, other_kernel=second)
    outside = await create(jp_fetch, {"kind": "code", "executor": "kernel", "scope": "kernel",
                                      "origin": {"kernel_id": "not-a-kernel-of-this-server"}})
    # When the first shuts down
    await rest_shutdown(bgtasks_app, jp_fetch, first)
    # Then only its tasks end: the second kernel's and the outsider's live on
    await assert_ended_as_expected(jp_fetch, t, within=3, how="shut down")
    await asyncio.sleep(1.5)
    assert (await call(jp_fetch, "tasks", outside["id"]))[1]["state"] == "pending"
    await cleanup(jp_fetch, t)


def watcher_of(app: Any) -> Any:
    (ext,) = app.extension_manager.extension_apps["bgtasks_ext"]
    return ext.kernel_watcher


@pytest.mark.parametrize("end,how", [(rest_restart, "restarted"), (rest_shutdown, "shut down")],
                         ids=["restart", "shutdown"])
async def test_without_kernel_events_the_poll_still_sees_it(
    bgtasks_app: Any, jp_fetch: Any, end: Ended, how: str
) -> None:
    # Given a watcher that hears no kernel events (a kernel manager that sends none)
    watcher = watcher_of(bgtasks_app)
    watcher.event_logger.remove_listener(schema_id=KERNEL_ACTIONS, listener=watcher._on_event)
    kernel_id = await start_kernel(bgtasks_app)
    await asyncio.sleep(1.5)  # seen by a poll
    t = await tasks_of(jp_fetch, kernel_id, other_kernel="elsewhere")
    # When the kernel restarts or shuts down / Then the next looks catch it
    await end(bgtasks_app, jp_fetch, kernel_id)
    await assert_ended_as_expected(jp_fetch, t, within=3, how=how)
    await cleanup(jp_fetch, t)


async def test_at_start_tasks_of_kernels_the_server_does_not_run_are_ended(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    # Given live tasks of a kernel this server does not run (as a previous server's
    # kernel leaves them: its process died with that server)
    t = await tasks_of(jp_fetch, "previous-servers-kernel", other_kernel="elsewhere")
    # When a watcher starts (as at server start)
    watcher = KernelWatcher(watcher_of(bgtasks_app).engine, bgtasks_app.kernel_manager, interval=60)
    await watcher.start()
    try:
        # Then they end as if that kernel had gone away
        await assert_ended_as_expected(jp_fetch, {**t, "other_kernel": t["server_scope"]},
                                       within=3, how="gone before this server started")
    finally:
        await watcher.stop()
    # (the "elsewhere" kernel's task was ended too: nothing runs that kernel here)
    assert (await call(jp_fetch, "tasks", t["other_kernel"]["id"]))[1]["state"] == "failed"
    await call(jp_fetch, "tasks", t["server_scope"]["id"], "cancel", method="POST", body="")
