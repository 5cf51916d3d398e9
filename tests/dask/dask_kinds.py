"""Kinds for the dask executor's tests (importable on the Dask workers: the tests start
them with this checkout on ``PYTHONPATH``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bgtasks_ext import progress


def whoami() -> dict:
    """Where the task's code runs: its pid and its parent's."""
    return {"pid": os.getpid(), "ppid": os.getppid()}


def steps(n: int = 5, pause: float = 0.5) -> int:
    """``n`` steps of ``pause`` seconds, each printed and reported as progress."""
    for i in range(n):
        print(f"step {i + 1} of {n}", flush=True)
        progress(i + 1, n, f"step {i + 1}")
        time.sleep(pause)
    return n


def stubborn(pidfile: str, seconds: float = 120.0) -> str:
    """Ignore the cooperative flag: sleep in C with a child process of its own, after
    writing both pids to ``pidfile`` (so a test can see them end)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    os.replace(pidfile + ".tmp", pidfile)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.1)
        except BaseException:
            continue  # swallow SIGTERM's TaskCancelled: only SIGKILL ends it
    return "slept"


def boom(message: str = "no luck") -> None:
    """Fail with a traceback that starts in this function."""
    def inner() -> None:
        raise ValueError(message)
    inner()


def noop() -> None:
    """Nothing: the benchmark's task."""


def hog(megabytes: int) -> int:
    """Take ``megabytes`` of memory at once."""
    block = bytearray(megabytes * 2**20)
    return len(block)


def chatty(megabytes: int) -> int:
    """Print ``megabytes`` MiB of text as fast as it can (a log far above ``log_cap``)."""
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    print("the last line", flush=True)
    return megabytes
