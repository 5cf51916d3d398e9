"""The dask executor's connection loop against a scheduler it cannot reach: it keeps
trying, and it still stops when asked (the server's exit waits for it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Many attempts in a row at a bad address, then the executor's shutdown and the
# interpreter's exit: each must return (a child process, so a hang cannot hang pytest).
SCRIPT = textwrap.dedent("""
    import logging, sys, threading, time
    from bgtasks_ext.executors.dask import DaskExecutor

    attempts = []

    class Count(logging.Handler):
        def emit(self, record):
            if "trying again" in record.getMessage():
                attempts.append(record)

    log = logging.getLogger("bgtasks_ext.executors.dask")
    log.addHandler(Count())
    log.setLevel(logging.INFO)
    log.propagate = False
    executor = DaskExecutor(sys.argv[1], max_backoff=0.01, connect_timeout=2)
    executor.start(object())
    deadline = time.monotonic() + 60
    while len(attempts) < 40:
        if time.monotonic() > deadline:
            print("stuck after", len(attempts), "attempts", flush=True)
            sys.exit(3)
        time.sleep(0.01)
    stopper = threading.Thread(target=executor.shutdown, args=(1.0,), daemon=True)
    stopper.start()
    stopper.join(30)
    print("stopped" if not stopper.is_alive() else "shutdown hangs", flush=True)
""")


def test_retrying_a_bad_scheduler_address_never_hangs_the_executor_or_the_exit() -> None:
    # Given c.BgTasks.dask_scheduler = "nonsense" (no port: Dask's Client fails at once)
    # When the executor has tried 40 times, then is shut down, and the process exits
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "nonsense"], cwd=str(REPO), capture_output=True,
                          text=True, timeout=150)
    # Then every step returned (each failed Client used to be collected, at random, inside
    # the next one's start, deadlocking on Dask's loop-runner lock)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    assert proc.stdout.strip() == "stopped", (proc.stdout, proc.stderr[-3000:])


def test_a_server_that_stops_leaves_no_error_in_the_schedulers_log(tmp_path: Path) -> None:
    from tests.dask.conftest import Cluster, dask_server_process, wait_connected

    cluster = Cluster(tmp_path / "cluster")
    cluster.root.mkdir()
    try:
        cluster.start_scheduler()
        # Given a server connected to the cluster's scheduler
        server = dask_server_process(tmp_path / "server", cluster.address)
        with server:
            wait_connected(server)
        # When it stops (SIGTERM), Then the scheduler's log says the client left, and no
        # more (it logged a CRITICAL traceback: it announced the client's removal on the
        # 'all' topic to that very client, already closed)
        log = cluster.root / "scheduler.log"
        deadline = time.monotonic() + 30
        while "Close client connection" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)
        assert "CRITICAL" not in log.read_text(), log.read_text()[-3000:]
    finally:
        cluster.stop()
