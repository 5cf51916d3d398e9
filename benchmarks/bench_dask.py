"""Dask executor: per-task overhead and no-op throughput through the engine, beside raw
``client.submit`` on the same cluster in the same run (SPEC §8: overhead ≤ 1.5×).

Run: ``python benchmarks/bench_dask.py``. It starts a real ``dask scheduler`` and one
``dask worker`` (2 threads) on loopback, as tests/dask do, and stops them by PID. The
engine persists to SQLite in a temp folder, as a server does. Our tasks run in a warm
child process of the Dask worker (so cancel can end them); raw ``client.submit`` runs
the same function in the worker's thread. The two latencies are taken in turns, task by
task, so that both see the same load on a shared machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from _common import done, p50, report  # noqa: E402

from bgtasks_ext.core.engine import Engine, EngineConfig  # noqa: E402
from bgtasks_ext.core.models import TaskSpec  # noqa: E402
from bgtasks_ext.executors.dask import DaskExecutor  # noqa: E402
from bgtasks_ext.kinds import default_registry  # noqa: E402
from bgtasks_ext.store.sqlite import SQLiteStore  # noqa: E402
from tests.dask.conftest import Cluster  # noqa: E402
from tests.dask.dask_kinds import noop  # noqa: E402

RUNS = 300
MANY = 1000


def latencies(engine: Engine, client: object) -> tuple[float, float]:
    """p50 of submit -> finished through the engine, and of ``client.submit().result()``,
    one task at a time, the two taken in turns so that both see the same load."""
    spec = TaskSpec(kind="noop", executor="dask")
    ours, raw = [], []
    for i in range(RUNS + 20):
        t0 = time.perf_counter()
        task = engine.submit(spec)
        end = engine.wait(task.id, 60)
        t1 = time.perf_counter()
        assert end.state.value == "finished", end
        client.submit(noop, pure=False).result()  # type: ignore[attr-defined]
        t2 = time.perf_counter()
        if i >= 20:  # the first ones warm the worker's pool and imports
            ours.append(t1 - t0)
            raw.append(t2 - t1)
    return p50(ours), p50(raw)


def engine_rate(engine: Engine) -> float:
    spec = TaskSpec(kind="noop", executor="dask")
    t0 = time.perf_counter()
    ids = [engine.submit(spec).id for _ in range(MANY)]
    for task_id in ids:
        assert engine.wait(task_id, 300).state.value == "finished"
    return MANY / (time.perf_counter() - t0)


def raw_rate(client: object) -> float:
    t0 = time.perf_counter()
    futures = [client.submit(noop, pure=False) for _ in range(MANY)]  # type: ignore[attr-defined]
    client.gather(futures)  # type: ignore[attr-defined]
    return MANY / (time.perf_counter() - t0)


def main() -> int:
    from distributed import Client

    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), nthreads=2)
        try:
            cluster.start_scheduler()
            cluster.add_worker()
            cluster.wait_workers(1)
            kinds = default_registry()
            kinds.register_ref("tests.dask.dask_kinds:noop")
            ex = DaskExecutor(cluster.address)
            engine = Engine(SQLiteStore(str(Path(tmp) / "tasks.sqlite")), {"dask": ex}, kinds,
                            EngineConfig(default_executor="dask"))
            engine.start()
            try:
                deadline = time.monotonic() + 60
                while ex.unavailable() is not None:
                    assert time.monotonic() < deadline, ex.unavailable()
                    time.sleep(0.05)
                with Client(cluster.address, set_as_default=False) as client:
                    ours_p50, raw_p50 = latencies(engine, client)
                    ours_rate = engine_rate(engine)
                    rate = raw_rate(client)
            finally:
                engine.stop()
        finally:
            cluster.stop()
    report("dask: per-task submit -> finished p50", ours_p50 * 1e3, "ms", raw_p50 * 1e3,
           "raw client.submit().result()", "<= 1.5x", ours_p50 <= 1.5 * raw_p50)
    report(f"dask: {MANY} no-op tasks throughput", ours_rate, "tasks/s", rate,
           f"raw client.submit x{MANY}", "(reported)", True)
    done()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
