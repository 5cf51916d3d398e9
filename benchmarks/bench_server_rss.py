"""Server memory with a large history: RSS with 100,000 tasks stored vs an empty store.

SPEC §8 target: ≤ +50 MB over an empty store. The engine keeps only live tasks in
memory; history stays in SQLite and is read a page at a time. Both servers are real
``jupyter server`` subprocesses measured after the same requests (listing pages of
every category, one task, kinds), so the figure is what a user's server would hold.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import done, report  # noqa: E402

from bgtasks_ext.core.models import Progress, Task, new_id  # noqa: E402
from bgtasks_ext.core.ports import PutTask  # noqa: E402
from bgtasks_ext.core.states import State  # noqa: E402
from bgtasks_ext.store.sqlite import SQLiteStore  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

N = 100_000


def fill(path: Path, n: int) -> None:
    store = SQLiteStore(path)
    store.open()
    now = time.time()
    states = [State.FINISHED, State.FAILED, State.CANCELLED]
    batch = []
    for i in range(n):
        batch.append(PutTask(Task(
            id=new_id(), kind="count", name=f"history {i}", params={"times": 3, "interval": 1.0},
            state=states[i % 3], created_at=now - 3600, started_at=now - 3599, finished_at=now - 3500,
            executor="process", progress=Progress(3, 3, "3 of 3"), result_preview=3 if i % 3 == 0 else None,
        )))
        if len(batch) == 5000:
            store.write(batch)
            batch = []
    if batch:
        store.write(batch)
    store.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store" / "tasks.sqlite"
        store.parent.mkdir(parents=True)
        fill(store, n)
        with ServerProcess(root, store, config={"keep_tasks": 0, "keep_days": 0.0}) as srv:
            session = requests.Session()
            session.headers.update(srv.headers)
            for category in ("pending", "failed", "finished"):
                cursor = None
                for _ in range(20):  # 20 pages of 200 per category
                    params = {"category": category, "limit": 200} | ({"cursor": cursor} if cursor else {})
                    page = session.get(srv.api + "tasks", params=params, timeout=30).json()
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
            session.get(srv.api + "kinds", timeout=30)
            time.sleep(0.5)
            return rss_mb(srv.pid)


def main() -> None:
    empty = measure(0)
    full = measure(N)
    delta = full - empty
    report("server RSS with 100,000 tasks in history (delta)", delta, "MB", empty,
           "RSS with an empty store", "≤ +50 MB", delta <= 50)
    print(f"  empty store {empty:.1f} MB, 100,000 tasks {full:.1f} MB")
    done()


if __name__ == "__main__":
    main()
