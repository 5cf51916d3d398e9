"""The ``dask`` executor against a real ``dask scheduler`` + ``dask worker`` (separate
processes on loopback), through a real Jupyter server's REST API."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.dask.conftest import Cluster, alive, ancestors, wait_state
from tests.server_process import ServerProcess

END = ("finished", "failed", "cancelled")


def submit(server: ServerProcess, kind: str, **body: object) -> dict:
    r = server.call("POST", "tasks", json={"kind": kind, "executor": "dask", **body})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_task_runs_in_a_child_process_of_a_dask_worker(dask_server: ServerProcess, cluster: Cluster) -> None:
    # When a task is created for the dask executor
    task = submit(dask_server, "whoami")
    done = dask_server.wait_end(task["id"])
    # Then it ran and its record says where
    assert done["state"] == "finished", done
    assert done["executor"] == "dask"
    pid = done["result_preview"]["pid"]
    # in a process under one of the Dask workers (not in the server, not in the worker itself)
    workers = set(cluster.worker_pids())
    assert workers and workers & set(ancestors(pid)), (pid, ancestors(pid), workers)
    assert pid not in workers and dask_server.pid not in ancestors(pid)


def test_progress_and_log_arrive_while_it_runs(dask_server: ServerProcess) -> None:
    task = submit(dask_server, "steps", params={"n": 6, "pause": 0.5})
    deadline = time.monotonic() + 60
    seen_running = None
    while time.monotonic() < deadline:
        t = dask_server.call("GET", f"tasks/{task['id']}").json()
        log = dask_server.call("GET", f"tasks/{task['id']}/log").json()["text"]
        if t["state"] == "running" and t["progress"]["current"] >= 1 and "step 1 of 6" in log:
            seen_running = (t, log)
            break
        assert t["state"] not in END, t
        time.sleep(0.05)
    # Then progress and log were there before the end
    assert seen_running is not None
    t, log = seen_running
    assert t["progress"]["total"] == 6 and t["progress"]["current"] < 6, t
    done = dask_server.wait_end(task["id"])
    assert done["state"] == "finished" and done["result_preview"] == 6
    assert done["progress"]["current"] == 6
    assert dask_server.call("GET", f"tasks/{task['id']}/log").json()["text"].count("step ") == 6


def test_an_error_comes_back_with_its_traceback(dask_server: ServerProcess) -> None:
    task = submit(dask_server, "boom", params={"message": "bad input 42"})
    done = dask_server.wait_end(task["id"])
    assert done["state"] == "failed"
    error = done["error"]
    assert error["type"] == "ValueError" and error["message"] == "bad input 42"
    assert "in inner" in error["traceback"] and "dask_kinds.py" in error["traceback"]
    assert "dask_worker" not in error["traceback"]  # it starts at the task's code


def test_cancel_of_a_running_task_ends_its_process_tree_within_seconds(
        dask_server: ServerProcess, tmp_path: Path) -> None:
    # Given a task that ignores the cooperative flag and SIGTERM, with a child of its own
    pidfile = tmp_path / "pids"
    task = submit(dask_server, "stubborn", params={"pidfile": str(pidfile)})
    wait_state(dask_server, task["id"], ("running",))
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid, child = map(int, pidfile.read_text().split())
    # When it is cancelled
    cancelled_at = time.monotonic()
    assert dask_server.call("POST", f"tasks/{task['id']}/cancel").status_code == 202
    done = dask_server.wait_end(task["id"], timeout=30)
    took = time.monotonic() - cancelled_at
    # Then it ends cancelled within seconds (cancel_grace is 1 s: flag, SIGTERM, SIGKILL)
    assert done["state"] == "cancelled", done
    assert took < 10, took
    # and neither its process nor the one it started lives on
    deadline = time.monotonic() + 5
    while (alive(pid) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid) and not alive(child)


def test_cancel_of_a_task_dask_has_not_started_cancels_it(
        dask_server: ServerProcess, cluster: Cluster, tmp_path: Path) -> None:
    # Given every Dask thread busy
    busy = [submit(dask_server, "stubborn", params={"pidfile": str(tmp_path / f"p{i}")})
            for i in range(cluster.nthreads)]
    for t in busy:
        wait_state(dask_server, t["id"], ("running",))
    # When a task queued behind them is cancelled
    queued = submit(dask_server, "whoami")
    time.sleep(0.5)
    assert dask_server.call("GET", f"tasks/{queued['id']}").json()["state"] == "pending"
    assert dask_server.call("POST", f"tasks/{queued['id']}/cancel").status_code == 202
    # Then it ends cancelled without having started, and never runs later
    done = dask_server.wait_end(queued["id"])
    assert done["state"] == "cancelled" and done["started_at"] is None
    for t in busy:
        dask_server.call("POST", f"tasks/{t['id']}/cancel")
    for t in busy:
        assert dask_server.wait_end(t["id"], 30)["state"] == "cancelled"
    after = submit(dask_server, "whoami")
    assert dask_server.wait_end(after["id"])["state"] == "finished"
    assert dask_server.call("GET", f"tasks/{queued['id']}").json()["started_at"] is None


def test_status_reports_the_cluster(dask_server: ServerProcess, cluster: Cluster) -> None:
    status = dask_server.call("GET", "status").json()["executors"]
    assert status["dask"]["connected"] is True and status["dask"]["error"] is None
    assert status["dask"]["address"] == cluster.address and status["dask"]["workers"] == 1
    assert status["process"]["available"] is True


def test_a_task_too_short_to_be_announced_keeps_its_log_and_progress(dask_server: ServerProcess) -> None:
    task = submit(dask_server, "steps", params={"n": 2, "pause": 0.0})
    done = dask_server.wait_end(task["id"])
    assert done["state"] == "finished" and done["started_at"] is not None
    assert done["progress"]["current"] == 2 and done["progress"]["total"] == 2
    assert dask_server.call("GET", f"tasks/{task['id']}/log").json()["text"] == "step 1 of 2\nstep 2 of 2\n"


def test_the_task_json_says_which_dask_worker_runs_it(dask_server: ServerProcess, cluster: Cluster) -> None:
    from distributed import Client

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        workers = set(client.scheduler_info(n_workers=-1)["workers"])
    # While it runs (announced) and after it ended
    slow = submit(dask_server, "steps", params={"n": 3, "pause": 0.3})
    running = wait_state(dask_server, slow["id"], ("running",))
    assert running["placement"] in workers, running
    # and for a task too short to be announced
    quick = submit(dask_server, "whoami")
    assert dask_server.wait_end(quick["id"])["placement"] in workers
    assert dask_server.wait_end(slow["id"])["placement"] in workers
    # Other executors have one place: none is named
    other = dask_server.call("POST", "tasks", json={"kind": "whoami", "executor": "process"}).json()
    assert dask_server.wait_end(other["id"])["placement"] is None


def test_a_timeout_ends_a_stubborn_task_and_its_process_tree(dask_server: ServerProcess, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    task = submit(dask_server, "stubborn", params={"pidfile": str(pidfile)}, timeout=2)
    done = dask_server.wait_end(task["id"], timeout=30)
    assert done["state"] == "failed" and done["error"]["reason"] == "timeout", done
    pid, child = map(int, pidfile.read_text().split())
    deadline = time.monotonic() + 5
    while (alive(pid) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid) and not alive(child)


def test_a_notebook_job_runs_on_dask(dask_server: ServerProcess) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('n is', n * 2)")]
    (dask_server.root / "on_dask.ipynb").write_text(nbformat.writes(nb))
    r = dask_server.call("POST", "tasks", json={"kind": "notebook", "executor": "dask",
                                                "params": {"path": "on_dask.ipynb", "parameters": {"n": 21}}})
    assert r.status_code == 201, r.text
    done = dask_server.wait_end(r.json()["id"], timeout=120)
    assert done["state"] == "finished", done
    assert done["placement"] and done["executor"] == "dask"
    assert "n is 42" in dask_server.call("GET", f"tasks/{done['id']}/log").json()["text"]
    assert (dask_server.root / done["result_preview"]["executed_copy"]).exists()
