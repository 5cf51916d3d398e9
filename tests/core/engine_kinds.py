"""Kinds used by the engine tests (importable, so process workers can load them too)."""

from __future__ import annotations

import time

from bgtasks_ext import cancelled, progress

_failures: dict[str, int] = {}


def noop() -> None:
    return None


def echo(value: object = None) -> object:
    return value


def talk(lines: int = 3) -> int:
    for i in range(lines):
        print(f"line {i}")
    return lines


def boom(message: str = "boom") -> None:
    raise ValueError(message)


def flaky(name: str, fail_times: int = 1) -> str:
    """Fails its first ``fail_times`` calls in this process, then succeeds."""
    seen = _failures.get(name, 0)
    _failures[name] = seen + 1
    if seen < fail_times:
        raise RuntimeError(f"attempt {seen + 1} fails")
    return "ok"


def steps(n: int = 100, pause: float = 0.01) -> int:
    for i in range(n):
        progress(i + 1, total=n, message=f"step {i + 1}")
        time.sleep(pause)
    return n


def stubborn(seconds: float = 30.0) -> str:
    """A pure-Python loop that never checks for cancel."""
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1
    return "done"


def blocked(seconds: float = 30.0) -> str:
    """One long blocking C call: only abandoning the thread stops it in time."""
    time.sleep(seconds)
    return "slept"


def polite(seconds: float = 30.0) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not cancelled():
        time.sleep(0.01)
    return "stopped" if cancelled() else "done"


def once_slow(marker: str, seconds: float = 60.0) -> str:
    """Slow on its first run (leaves a marker file), quick on any later run."""
    import os

    if os.path.exists(marker):
        return "second run"
    with open(marker, "w") as f:
        f.write("started")
    time.sleep(seconds)
    return "first run"


def exits(code: int = 3) -> None:
    """sys.exit() in task code: must end the attempt, not the thread that runs it."""
    raise SystemExit(code)


def interrupted_by_hand() -> None:
    raise KeyboardInterrupt("pressed")


def counts_to(n: int = 200_000) -> int:
    """A pure-Python loop of a few milliseconds."""
    x = 0
    for _ in range(n):
        x += 1
    return x


def bytes_of(size: int = 1) -> bytes:
    return b"x" * size


def steps_then_wait(steps: int = 5) -> str:
    """Reports ``steps`` steps, then waits politely until cancelled (or 30 s)."""
    from bgtasks_ext import progress as report

    for i in range(steps):
        report(i + 1, steps)
        time.sleep(0.06)
    end = time.monotonic() + 30
    while time.monotonic() < end and not cancelled():
        time.sleep(0.01)
    return "stopped" if cancelled() else "waited"


def until_file(path: str, seconds: float = 60.0) -> str:
    """Runs until ``path`` exists (or it is cancelled): a test says when it ends."""
    import os

    end = time.monotonic() + seconds
    while time.monotonic() < end and not cancelled():
        if os.path.exists(path):
            return "released"
        time.sleep(0.01)
    return "stopped" if cancelled() else "timed out"
