"""Cost per iteration of ``track()`` and per call of ``progress()``, beside tqdm's.

Run: ``python benchmarks/bench_progress.py`` (exit status 0; prints one line per figure).
SPEC §8 target: ``track()`` per iteration and ``progress()`` per call cost at most what a
tqdm loop costs per iteration, measured in the same run.

Everything is measured where users run it: inside a task in a real process worker (the
process executor, the worker's own socket sink, flusher and pacer threads), so each loop
reports to a real task context. tqdm writes to a null file, as a user's bar would in a
worker whose output nobody watches (in a task it is also tied to the task: bridge on).
The variants take turns, round after round, and the best round of each counts, so a
noisy neighbour slows them alike instead of one of them.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import done, report  # noqa: E402

from bgtasks_ext.core.ports import Job, Outcome  # noqa: E402
from bgtasks_ext.executors.process import ProcessExecutor  # noqa: E402

# The kind: workers import this file as the module ``bench_progress`` (the executor
# hands the server's sys.path, which holds this folder, to its workers).
REF = "bench_progress:loops"
N = 1_000_000
ROUNDS = 9


def loops() -> dict[str, float]:
    """Runs in the worker, inside the task: ns per iteration of each variant (best round)."""
    from tqdm import tqdm

    from bgtasks_ext import progress, track

    data = list(range(N))
    null = open(os.devnull, "w")  # noqa: SIM115 - closed below

    def bare() -> None:
        for _ in data:
            pass

    def tqdm_loop() -> None:
        for _ in tqdm(data, file=null):
            pass

    def track_loop() -> None:
        for _ in track(data):
            pass

    def progress_loop() -> None:
        for i in data:
            progress(i)

    def progress_total_loop() -> None:
        for i in data:
            progress(i, N)

    variants = {"bare": bare, "tqdm": tqdm_loop, "track": track_loop, "progress": progress_loop,
                "progress_total": progress_total_loop}
    best = dict.fromkeys(variants, float("inf"))
    try:
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    finally:
        null.close()
    return {name: seconds / N * 1e9 for name, seconds in best.items()}


class Recorder:
    """The executor's callbacks: keeps the outcome and counts progress reports."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.outcome: Outcome | None = None
        self.reports = 0

    def claim(self, task_id: str) -> bool:
        return True

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        self.reports += 1

    def log(self, task_id: str, text: str) -> None:
        pass

    def done(self, task_id: str, outcome: Outcome) -> None:
        self.outcome = outcome
        self.ended.set()


def in_worker() -> tuple[dict[str, float], int]:
    rec = Recorder()
    ex = ProcessExecutor(workers=1)
    ex.start(rec)
    try:
        ex.submit(Job("bench-progress", "loops", REF))
        if not rec.ended.wait(600):
            raise SystemExit("timed out waiting for the worker")
    finally:
        ex.shutdown(5)
    outcome = rec.outcome
    if outcome is None or outcome.result is None or outcome.status != "finished":
        raise SystemExit(f"the benchmark task did not finish: {outcome}")
    result: Any = pickle.loads(outcome.result)  # noqa: S301 - our own worker's result
    return result, rec.reports


def main() -> int:
    ns, reports = in_worker()
    tq = ns["tqdm"]
    report("bare loop over a list, in a worker (floor)", ns["bare"], "ns/it", tq,
           "tqdm in the same run", "-", True)
    report("tqdm(file=null) per iteration, in a worker", tq, "ns/it", tq,
           "tqdm in the same run", "(the baseline)", True)
    report("track() per iteration, in a worker", ns["track"], "ns/it", tq,
           "tqdm in the same run", "<= 1x tqdm", ns["track"] <= tq)
    report("progress(i) per call, in a worker", ns["progress"], "ns/call", tq,
           "tqdm in the same run", "<= 1x tqdm", ns["progress"] <= tq)
    report("progress(i, total) per call, in a worker", ns["progress_total"], "ns/call", tq,
           "tqdm in the same run", "<= 1x tqdm", ns["progress_total"] <= tq)
    print(f"(progress reports that reached the executor during the run: {reports})", flush=True)
    done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
