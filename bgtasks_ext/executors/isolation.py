"""What one task may change in its worker process, undone before the next task.

A worker runs many tasks in turn (that is what makes it warm). A task can change the
process: its environment, working directory, ``sys.path``, resource limits. Each is
snapshotted when the worker starts and put back after every task; what cannot be put
back (a hard limit lowered: only root may raise it again) makes the worker retire, so
the next task gets a fresh one. ``task_memory_limit`` is applied here too, as the
address-space limit of the worker while a task runs.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

_LIMITS = [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]
_LIMIT_EVENTS = frozenset({"resource.setrlimit", "resource.prlimit"})


def _limits() -> dict[int, tuple[int, int]]:
    out = {}
    for which in _LIMITS:
        try:
            out[which] = resource.getrlimit(which)
        except (ValueError, OSError):
            continue
    return out


class Snapshot:
    """The process state a task must not carry to the next one."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self._env_data = dict(_env_data())
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.limits = _limits()
        # Reading every limit back costs a system call each, after every task: only
        # done once something in this process asked to change one (CPython audits it).
        self._limits_touched = False
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if event in _LIMIT_EVENTS:
            self._limits_touched = True

    def restore(self) -> list[str]:
        """Put everything back; returns what could not be (the worker should retire)."""
        problems = []
        if _env_data() != self._env_data:
            os.environ.clear()
            os.environ.update(self.env)
        try:
            if os.getcwd() != self.cwd:
                os.chdir(self.cwd)
        except OSError:
            try:
                os.chdir(self.cwd)
            except OSError as exc:
                problems.append(f"working directory: {exc}")
        if sys.path != self.path:
            sys.path[:] = self.path
        if self._limits_touched:
            self._limits_touched = False
            for which, was in self.limits.items():
                try:
                    if resource.getrlimit(which) != was:
                        resource.setrlimit(which, was)
                except (ValueError, OSError) as exc:
                    problems.append(f"resource limit {which}: {exc}")
            self._limits_touched = False  # (our own setrlimit calls above are audited too)
        return problems


def _env_data() -> dict[Any, Any]:
    """The environment as os.environ holds it (encoded): comparing it is ~100 times
    faster than comparing os.environ itself, which decodes every entry; this runs after
    every task."""
    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else dict(os.environ)


def address_space() -> int:
    """This process's virtual size in bytes (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class MemoryLimit:
    """While entered: the task may grow the worker's address space by at most ``limit``
    bytes (RLIMIT_AS); beyond it, allocations fail (``MemoryError`` in Python)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit or None
        self._was: tuple[int, int] | None = None

    def __enter__(self) -> MemoryLimit:
        if self.limit is not None:
            self._was = resource.getrlimit(resource.RLIMIT_AS)
            soft = address_space() + self.limit
            hard = self._was[1]
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._was is not None:
            resource.setrlimit(resource.RLIMIT_AS, self._was)
            self._was = None
