"""A task's log travels as events through the Dask scheduler, which keeps the last
events of every topic (``distributed.admin.low-level-log-length``, 1,000 by default)
for as long as it runs: what one chatty task leaves there must stay small."""

from __future__ import annotations

from distributed import Client

from tests.dask.conftest import Cluster
from tests.server_process import ServerProcess


def test_a_chatty_task_leaves_little_of_its_log_on_the_scheduler(dask_server: ServerProcess,
                                                                  cluster: Cluster) -> None:
    # Given a task on Dask that prints 64 MiB (far above what the server keeps of a log)
    r = dask_server.call("POST", "tasks", json={"kind": "chatty", "executor": "dask", "params": {"megabytes": 64}})
    assert r.status_code == 201, r.text
    task = r.json()
    done = dask_server.wait_end(task["id"], timeout=180)
    assert done["state"] == "finished", done
    # Its log's end reached the server
    assert dask_server.call("GET", f"tasks/{task['id']}/log").json()["text"].endswith("the last line\n")
    # Then the scheduler holds at most a few MiB of it (it held all 64 MiB, in 256 KiB
    # events: up to 256 MiB per server start, for the scheduler's lifetime)
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        events = client.get_events()
    kept = sum(len(msg.get("text") or "") for topic, items in events.items() if topic.startswith("bgtasks-")
               for _, msg in items if isinstance(msg, dict) and msg.get("task_id") == task["id"])
    assert 0 < kept <= 20 * 2**20, kept
