"""A task's whole process tree, found and ended (Linux ``/proc``).

What a task starts must end with it: on cancel, timeout and worker death, and also
when the task returns and leaves children behind. Two facts make the tree findable:

- every worker is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): a process the task
  starts that loses its parent (a daemon's double fork, ``setsid`` included) is
  re-parented to the worker, not to PID 1, so the task's processes stay the worker's
  descendants while the worker lives;
- the worker marks the environment of each run (:data:`RUN_MARK`); children inherit it,
  so after the worker itself died (killed, or crashed), what is left of the run is
  found by its mark.

Processes a kind keeps for later tasks (:mod:`bgtasks_ext.core.warm`) are left out of the
sweep at a task's end (``descendants(..., spare=kept)``); the worker's own mark
(``WORKER_MARK``) finds them once the worker is gone.

Ending a tree: every process is stopped (``SIGSTOP``) before any is killed, and the
walk repeats until it finds nothing new, so a process that forks while the tree is
being walked cannot leave a child behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import Callable, Collection

RUN_MARK = "BGTASKS_RUN"
"""Environment variable the worker sets to ``task_id.attempt`` while a task runs."""

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux 3.4+)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (of all its threads)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def descendants(pid: int, spare: Collection[int] = ()) -> list[int]:
    """Every live descendant of ``pid``, parents before their children, except the
    processes in ``spare`` and their own descendants (what a kind keeps, core/warm.py)."""
    found: list[int] = []
    seen = {pid, *spare}
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in seen:
                seen.add(child)
                found.append(child)
                todo.append(child)
    return found


def marked(mark: str, var: str = RUN_MARK) -> list[int]:
    """Processes (other than this one) whose environment holds ``var=mark`` (the run's
    mark by default; a worker's, :data:`~bgtasks_ext.core.warm.WORKER_MARK`, to find
    what a worker kept once it is gone)."""
    needle = f"{var}={mark}".encode()
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(int(entry))
    return out


def end(find: Callable[[], list[int]], grace: float = 0.0) -> list[int]:
    """End every process ``find()`` returns, and what it returns after: SIGTERM and up to
    ``grace`` seconds to exit when ``grace`` > 0, then SIGSTOP + SIGKILL for the rest.
    Returns the pids that were running when found (zombies have ended already)."""
    ended: list[int] = []
    if grace > 0:
        first = [p for p in find() if running(p)]
        if not first:
            return ended
        ended.extend(first)
        _signal(first, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(running(p) for p in first):
            time.sleep(0.01)
    stopped: set[int] = set()
    while True:
        fresh = [p for p in find() if p not in stopped]
        if not fresh:
            break
        _signal(fresh, signal.SIGSTOP)  # no new forks while the rest is found
        stopped.update(fresh)
    were_running = [p for p in stopped if running(p)]
    _signal(sorted(stopped), signal.SIGKILL)
    ended.extend(p for p in were_running if p not in ended)
    return ended


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def running(pid: int) -> bool:
    """Running (a zombie has ended: only its exit status is left to collect)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
