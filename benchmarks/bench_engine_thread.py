"""No-op tasks per second through the engine (thread executor, SQLite persistence on)
beside a raw ``concurrent.futures.ThreadPoolExecutor`` in the same run.

SPEC §8 target: ≥ 10,000 tasks/s. Tasks are submitted the way the server submits
them, from an asyncio loop (``acreate``), many in flight at once, and every task is
stored three times (pending, running, finished) before it counts as done.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import done, report  # noqa: E402

from bgtasks_ext.core.engine import Engine, EngineConfig  # noqa: E402
from bgtasks_ext.core.models import TaskSpec  # noqa: E402
from bgtasks_ext.core.registry import KindRegistry  # noqa: E402
from bgtasks_ext.executors.thread import ThreadExecutor  # noqa: E402
from bgtasks_ext.store.sqlite import SQLiteStore  # noqa: E402

N = 20_000
WORKERS = 2


def noop() -> None:
    return None


def raw_pool() -> float:
    with ThreadPoolExecutor(WORKERS) as pool:
        t0 = time.perf_counter()
        futures = [pool.submit(noop) for _ in range(N)]
        for f in futures:
            f.result()
        return N / (time.perf_counter() - t0)


def engine_rate(tmp: str) -> float:
    kinds = KindRegistry()
    kinds.register(noop)
    engine = Engine(
        SQLiteStore(str(Path(tmp) / "bench.sqlite")),
        {"thread": ThreadExecutor(WORKERS)},
        kinds,
        EngineConfig(default_executor="thread", keep=None, max_age=None),
    )
    engine.start()
    finished = threading.Event()
    count = 0

    def on_event(event: object) -> None:
        nonlocal count
        if event.task.state.value == "finished":  # type: ignore[attr-defined]
            count += 1
            if count == N:
                finished.set()

    engine.subscribe(on_event)
    spec = TaskSpec("noop")

    async def submit_all() -> None:
        await asyncio.gather(*(engine.acreate(spec) for _ in range(N)))

    t0 = time.perf_counter()
    asyncio.run(submit_all())
    finished.wait(120)
    engine.flush()  # count only what is stored
    elapsed = time.perf_counter() - t0
    engine.stop()
    return N / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = max(raw_pool() for _ in range(3))
        rate = engine_rate(tmp)
    report("engine no-op tasks/s (thread, persisted)", rate, "tasks/s", base,
           "raw ThreadPoolExecutor", "≥ 10,000/s", rate >= 10_000)
    done()


if __name__ == "__main__":
    main()
