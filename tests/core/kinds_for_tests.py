"""Kinds used by the executor tests (referenced as ``tests.core.kinds_for_tests:NAME``).

They run inside worker processes, so they only use what a worker can import.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import cloudpickle

from bgtasks_ext.core.context import TaskContext


def add(a: int, b: int) -> int:
    return a + b


def noop() -> None:
    return None


def echo(value: Any) -> Any:
    return value


def big_list(n: int = 10_000) -> list[int]:
    return list(range(n))


def chatty(ctx: TaskContext, n: int) -> int:
    """Calls progress ``n`` times as fast as it can."""
    for i in range(n):
        ctx.progress(i + 1, n, "chatting")
    return n


def printer(lines: int) -> str:
    for i in range(lines):
        print(f"line {i}")
    print("to stderr", file=sys.stderr)
    return "printed"


def boom() -> None:
    raise ValueError("boom from the task")


def spin() -> None:
    """A pure-Python CPU loop that never looks at the cancel flag."""
    x = 0
    while True:
        x += 1


def block() -> None:
    """Blocked in one C call."""
    time.sleep(1000)


def stubborn() -> None:
    """Ignores SIGTERM, then blocks: only SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(1000)


def exit3() -> None:
    os._exit(3)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def unpicklable() -> Any:
    return threading.Lock()


def whoami() -> dict[str, Any]:
    return {"pid": os.getpid(), "python": sys.executable, "cwd": os.getcwd()}


def read_payload(ctx: TaskContext) -> Any:
    assert ctx.payload is not None
    return cloudpickle.loads(ctx.payload)


def report_then_block(ctx: TaskContext) -> None:
    """Leaves its last progress and a line unsent, then blocks for long."""
    ctx.progress(1, 10, "starting")
    ctx.progress(2, 10, "almost")  # within the flush interval: coalesced away for now
    print("hello")
    time.sleep(1000)


def shell_echo(text: str = "from the shell") -> int:
    """Output that bypasses sys.stdout: a child process writing to fd 1 and 2."""
    import os

    return os.system(f"echo {text}; echo {text} on stderr 1>&2")


_DAEMON = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(300)
"""


def spawn_tree(pidfile: str, then: str = "wait") -> str:
    """Start five processes the way tasks do (a child, a shell with two children, a
    double-forked daemon in its own session), write their pids to ``pidfile``, then
    wait (``then="wait"``) or return at once, leaving them running."""
    import subprocess
    import sys

    pids = []
    sleeper = subprocess.Popen(["sleep", "300"])
    pids.append(sleeper.pid)
    shell = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    pids.append(shell.pid)
    deadline = time.monotonic() + 10
    while len(shell_children := _children(shell.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    pids.extend(shell_children)
    subprocess.run([sys.executable, "-c", _DAEMON, pidfile + ".daemon"], check=True)
    daemon = pidfile + ".daemon"
    while not (os.path.exists(daemon) and open(daemon).read().endswith("\n")) and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(pidfile + ".daemon") as f:
        pids.extend(int(p) for p in f.read().split())
    with open(pidfile, "w") as f:
        f.write("\n".join(map(str, pids)) + "\n")
    if then == "wait":
        while True:
            time.sleep(0.05)
    return "left them"


def _children(pid: int) -> list[int]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(p) for p in f.read().split())
    return out


def meddle() -> dict[str, Any]:
    """Change what a task should not leave behind, and report what it found first."""
    import resource
    import sys

    found = {"env": os.environ.get("BGTASKS_TEST_LEAK"), "cwd": os.getcwd(),
             "path": "/leaked/path" in sys.path,
             "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "pid": os.getpid()}
    os.environ["BGTASKS_TEST_LEAK"] = "leaked"
    os.chdir("/")
    sys.path.append("/leaked/path")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))
    return found


def hog(megabytes: int) -> int:
    block = bytearray(megabytes * 2**20)
    return len(block)
