"""Faults of the dask executor: a worker killed mid-task, a scheduler that cannot be
reached, a server that dies with tasks on Dask; and ``"local"``, a LocalCluster that
starts and stops with the server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dask.conftest import Cluster, alive, ancestors, dask_server_process, wait_connected, wait_state
from tests.server_process import ServerProcess, free_port


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster this test may break."""
    c = Cluster(tmp_path / "cluster", nthreads=3)
    c.root.mkdir()
    try:
        c.start_scheduler()
        c.add_worker()
        c.wait_workers(1)
        yield c
    finally:
        c.stop()


def test_a_worker_killed_mid_task_fails_it_as_worker_died_or_retries_it(
        own_cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with dask_server_process(tmp_path / "server", own_cluster.address) as server:
        wait_connected(server)
        # Given two running tasks on one Dask worker, one with a retry left
        once = server.call("POST", "tasks", json={"kind": "steps", "executor": "dask",
                                                  "params": {"n": 40, "pause": 0.25}}).json()
        again = server.call("POST", "tasks", json={"kind": "steps", "executor": "dask", "retries": 1,
                                                   "params": {"n": 8, "pause": 0.25}}).json()
        pidfile = tmp_path / "pids"
        stubborn = server.call("POST", "tasks", json={"kind": "stubborn", "executor": "dask",
                                                      "params": {"pidfile": str(pidfile)}}).json()
        for t in (once, again, stubborn):
            wait_state(server, t["id"], ("running",))
        deadline = time.monotonic() + 30
        while not pidfile.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        task_pid, child_pid = map(int, pidfile.read_text().split())
        # (the task's own child outlives a worker killed by SIGKILL, as documented: ended here)
        request.addfinalizer(lambda: _kill(child_pid))
        # When the Dask worker process dies (its nanny starts a new one)
        [worker] = own_cluster.worker_pids()
        assert worker in ancestors(task_pid)
        os.kill(worker, signal.SIGKILL)
        # Then the task without retries fails with reason worker_died
        failed = server.wait_end(once["id"], timeout=60)
        assert failed["state"] == "failed", failed
        assert failed["error"]["reason"] == "worker_died", failed["error"]
        assert server.wait_end(stubborn["id"], timeout=60)["error"]["reason"] == "worker_died"
        # and the process that ran it died with the worker
        deadline = time.monotonic() + 10
        while alive(task_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(task_pid)
        # and the other runs again, on the new worker, to the end
        retried = server.wait_end(again["id"], timeout=90)
        assert retried["state"] == "finished", retried
        assert retried["attempt"] == 2


def test_an_unreachable_scheduler_is_a_clear_error_and_other_executors_work(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with dask_server_process(tmp_path, address) as server:
        # Then the server log names the setting
        deadline = time.monotonic() + 30
        while "dask_scheduler" not in server.log_path.read_text():
            assert time.monotonic() < deadline, server.log_path.read_text()[-3000:]
            time.sleep(0.1)
        assert address in server.log_path.read_text()
        # and a dask task is refused, naming it
        r = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"})
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "executor" and "dask_scheduler" in r.json()["message"]
        # while the process executor runs tasks as usual
        t = server.call("POST", "tasks", json={"kind": "whoami", "executor": "process"}).json()
        assert server.wait_end(t["id"])["state"] == "finished"
        # and the status route says why
        status = server.call("GET", "status").json()["executors"]["dask"]
        assert status["connected"] is False and "dask_scheduler" in status["error"]


def test_it_connects_once_the_scheduler_comes_up(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "cluster")
    cluster.root.mkdir()
    try:
        with dask_server_process(tmp_path / "server", cluster.address) as server:
            time.sleep(1.5)
            assert server.call("GET", "status").json()["executors"]["dask"]["connected"] is False
            # When the scheduler starts later
            cluster.start_scheduler()
            cluster.add_worker()
            # Then the executor connects (back-off) and runs tasks
            wait_connected(server, timeout=90)
            t = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"})
            assert t.status_code == 201, t.text
            assert server.wait_end(t.json()["id"], timeout=60)["state"] == "finished"
    finally:
        cluster.stop()


def test_local_starts_and_stops_a_local_cluster_with_the_server(tmp_path: Path) -> None:
    server = dask_server_process(tmp_path, "local", dask_local_workers=1)
    server.start()
    try:
        wait_connected(server, timeout=90)
        t = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"}).json()
        done = server.wait_end(t["id"], timeout=60)
        assert done["state"] == "finished", done
        # It ran under a worker of a cluster the server started
        chain = ancestors(done["result_preview"]["pid"])
        assert server.pid in chain
        dask_worker = done["result_preview"]["ppid"]
        assert dask_worker != server.pid
        # When the server stops
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        # Then the cluster's worker (and the task's process) went with it
        deadline = time.monotonic() + 20
        while (alive(dask_worker) or alive(done["result_preview"]["pid"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(dask_worker) and not alive(done["result_preview"]["pid"])
    finally:
        server.stop()


def test_a_server_restart_never_leaves_dask_tasks_running(cluster: Cluster, tmp_path: Path) -> None:
    # Given a server running a long task on Dask
    server = dask_server_process(tmp_path, cluster.address, lease_time=2.0)
    server.start()
    try:
        wait_connected(server)
        t = server.call("POST", "tasks", json={"kind": "steps", "executor": "dask",
                                               "params": {"n": 200, "pause": 0.1}}).json()
        wait_state(server, t["id"], ("running",))
        # When it dies without a word
        server.kill9()
        # Then the next server on the store does not leave it running
        server.start()
        done = server.wait_end(t["id"], timeout=60)
        assert done["state"] == "failed" and done["error"]["reason"] == "interrupted", done
    finally:
        server.stop()


def test_a_lost_scheduler_is_shown_and_reconnected(own_cluster: Cluster, tmp_path: Path) -> None:
    with dask_server_process(tmp_path / "server", own_cluster.address) as server:
        wait_connected(server)
        t = server.call("POST", "tasks", json={"kind": "steps", "executor": "dask",
                                               "params": {"n": 400, "pause": 0.1}}).json()
        wait_state(server, t["id"], ("running",))
        # When the scheduler goes away
        assert own_cluster.scheduler is not None
        os.killpg(own_cluster.scheduler.pid, signal.SIGKILL)
        own_cluster.scheduler.wait(10)
        # Then the running task ends (interrupted: re-queued while it has retries)
        done = server.wait_end(t["id"], timeout=60)
        assert done["state"] == "failed" and done["error"]["reason"] == "interrupted", done
        assert done["error"]["type"] == "DaskConnectionLost"
        # the status route and the log say so, and new dask tasks are refused naming the setting
        deadline = time.monotonic() + 30
        while (status := server.call("GET", "status").json()["executors"]["dask"])["connected"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["available"] is False and "dask_scheduler" in status["error"]
        assert "lost its scheduler" in server.log_path.read_text()
        r = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"})
        assert r.status_code == 400 and "dask_scheduler" in r.json()["message"]
        # And once it is back, the executor reconnects and runs tasks again
        own_cluster.start_scheduler()
        status = wait_connected(server, timeout=90)
        assert status["connects"] >= 2
        own_cluster.add_worker()  # (the old one may be waiting out its own reconnect)
        own_cluster.wait_workers(1, timeout=90)
        again = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"}).json()
        assert server.wait_end(again["id"], timeout=60)["state"] == "finished"


def test_default_executor_dask_needs_a_scheduler(tmp_path: Path) -> None:
    from traitlets import TraitError

    from bgtasks_ext.server.app import BgTasks

    app = BgTasks(default_executor="dask", store_path=str(tmp_path / "t.sqlite"))
    with pytest.raises(TraitError, match="dask_scheduler"):
        app.make_engine()


def test_default_executor_dask_sends_every_task_there(cluster: Cluster, tmp_path: Path) -> None:
    # (as SPEC §7 spells it: c.BgTasks.executor)
    with dask_server_process(tmp_path, cluster.address, executor="dask") as server:
        wait_connected(server)
        t = server.call("POST", "tasks", json={"kind": "whoami"}).json()
        done = server.wait_end(t["id"], timeout=60)
        assert done["executor"] == "dask" and done["state"] == "finished" and done["placement"]


def test_a_pending_dask_task_runs_after_a_server_restart(cluster: Cluster, tmp_path: Path) -> None:
    # Given a server whose Dask threads are all busy, with one more task queued
    server = dask_server_process(tmp_path, cluster.address, lease_time=2.0)
    server.start()
    try:
        wait_connected(server)
        busy = [server.call("POST", "tasks", json={"kind": "stubborn", "executor": "dask", "params": {
            "pidfile": str(tmp_path / f"p{i}")}}).json() for i in range(cluster.nthreads)]
        for t in busy:
            wait_state(server, t["id"], ("running",))
        queued = server.call("POST", "tasks", json={"kind": "whoami", "executor": "dask"}).json()
        time.sleep(0.5)
        assert server.call("GET", f"tasks/{queued['id']}").json()["state"] == "pending"
        # When the server dies and starts again on the same store
        server.kill9()
        server.start()
        # Then the running ones end interrupted, and the queued one runs (its executor
        # holds it until its connection is up, instead of failing it)
        for t in busy:
            assert server.wait_end(t["id"], timeout=60)["error"]["reason"] == "interrupted"
        done = server.wait_end(queued["id"], timeout=60)
        assert done["state"] == "finished", done
    finally:
        server.stop()


def test_task_memory_limit_applies_on_dask_workers(own_cluster: Cluster, tmp_path: Path) -> None:
    with dask_server_process(tmp_path, own_cluster.address, task_memory_limit=200 * 2**20) as server:
        wait_connected(server)
        big = server.call("POST", "tasks", json={"kind": "hog", "executor": "dask",
                                                 "params": {"megabytes": 1000}}).json()
        failed = server.wait_end(big["id"], timeout=60)
        assert failed["state"] == "failed" and failed["error"]["reason"] == "memory", failed
        small = server.call("POST", "tasks", json={"kind": "hog", "executor": "dask",
                                                   "params": {"megabytes": 10}}).json()
        assert server.wait_end(small["id"], timeout=60)["state"] == "finished"


def test_without_dask_scheduler_a_dask_task_is_refused_saying_how_to_turn_it_on(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, tmp_path / "store" / "tasks.sqlite")
    with server:
        r = server.call("POST", "tasks", json={"kind": "count", "executor": "dask", "params": {"times": 1}})
        assert r.status_code == 400 and r.json()["field"] == "executor", r.text
        assert "dask_scheduler" in r.json()["message"]
        assert server.call("GET", "status").json()["executors"]["dask"]["available"] is False
