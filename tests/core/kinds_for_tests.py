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
