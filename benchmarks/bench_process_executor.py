"""Process executor: warm start latency and no-op throughput, beside a spawn.

Run: ``python benchmarks/bench_process_executor.py`` (exit status 0; prints one line
per figure). The baseline, ``python -c pass`` with the same interpreter, is measured
in the same run, because what a warm pool must beat is starting a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import done, p50, report  # noqa: E402

from bgtasks_ext.core.ports import Job, Outcome  # noqa: E402
from bgtasks_ext.executors.process import ProcessExecutor  # noqa: E402

# Kinds: workers import this file as the module ``bench_process_executor`` (the
# executor hands the server's sys.path, which holds this folder, to its workers).
REF = "bench_process_executor:"


def started() -> float:
    """Return when user code started, on the clock shared by all processes."""
    return time.perf_counter()


def noop() -> None:
    return None


class Recorder:
    """Counts ends and keeps start times; cheap like the engine's callbacks must be."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.ended: dict[str, Outcome] = {}
        self.claimed: dict[str, float] = {}

    def claim(self, task_id: str) -> bool:
        self.claimed[task_id] = time.perf_counter()
        return True

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        pass

    def log(self, task_id: str, text: str) -> None:
        pass

    def done(self, task_id: str, outcome: Outcome) -> None:
        with self.cond:
            self.ended[task_id] = outcome
            if len(self.ended) >= self.want:
                self.cond.notify_all()

    want = 1

    def wait(self, n: int, timeout: float = 120) -> None:
        with self.cond:
            self.want = n
            if not self.cond.wait_for(lambda: len(self.ended) >= n, timeout):
                raise SystemExit(f"timed out: {len(self.ended)} of {n} tasks ended")


def spawn_time(runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return p50(times)


def latency(ex: ProcessExecutor, rec: Recorder, runs: int = 400) -> tuple[float, float]:
    """p50 of submit → claim and of submit → user code running, one job at a time."""
    to_claim, to_start = [], []
    for i in range(runs):
        task_id = f"lat{i}"
        base = len(rec.ended)  # before submit: the job may end before the next line
        t0 = time.perf_counter()
        ex.submit(Job(task_id, "started", REF + "started"))
        rec.wait(base + 1)
        outcome = rec.ended[task_id]
        assert outcome.status == "finished", outcome
        if i >= 20:  # the first runs import and build the kind in each worker
            to_claim.append(rec.claimed[task_id] - t0)
            to_start.append(float(outcome.preview) - t0)
    return p50(to_claim), p50(to_start)


def throughput(ex: ProcessExecutor, rec: Recorder, n: int = 20_000) -> float:
    base = len(rec.ended)
    jobs = [Job(f"tp{i}", "noop", REF + "noop") for i in range(n)]
    t0 = time.perf_counter()
    for job in jobs:
        ex.submit(job)
    rec.wait(base + n)
    return n / (time.perf_counter() - t0)


def main() -> int:
    spawn = spawn_time()
    rec = Recorder()
    ex = ProcessExecutor(workers=2)
    ex.start(rec)
    try:
        # Warm up: both workers ready and the kinds imported in each.
        for i in range(10):
            ex.submit(Job(f"warm{i}", "started", REF + "started"))
        rec.wait(10)
        claim_p50, start_p50 = latency(ex, rec)
        rate = throughput(ex, rec)
    finally:
        ex.shutdown(5)
    report("process executor: warm start latency p50", start_p50 * 1e3, "ms", spawn * 1e3,
           "python -c pass", "<= 0.04x (1/25)", start_p50 <= spawn / 25)
    report("process executor: submit -> claim p50", claim_p50 * 1e3, "ms", spawn * 1e3,
           "python -c pass", "(part of the above)", True)
    report("process executor: no-op tasks/s, 2 workers", rate, "tasks/s", 1 / spawn,
           "a spawn per task", ">= 2,000/s", rate >= 2000)
    done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
