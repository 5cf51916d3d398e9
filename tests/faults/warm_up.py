"""Warm functions of tests/faults/warm_kinds.py: imported only where one is called, so
a test can tell from ``sys.modules`` whether a worker was warmed."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bgtasks_ext.core import warm

_kept: list[subprocess.Popen[bytes]] = []
RECORD_ENV = "WARM_TEST_RECORD"
"""Where ``warm_up`` records when its settings name no ``record`` (a server's workers)."""


def warm_up(settings: dict[str, Any]) -> None:
    """Keep a ``sleep 1000`` child (a pool kernel's stand-in); then append
    ``<worker pid> <kept pid>`` to ``settings["record"]`` (or ``$WARM_TEST_RECORD``)."""
    print("warming up: this goes to the server's log")
    with warm.starting():
        proc = subprocess.Popen(["sleep", "1000"], stdout=warm.output_fd(), stderr=warm.output_fd())
        warm.keep(proc.pid)
    _kept.append(proc)
    with open(settings.get("record") or os.environ[RECORD_ENV], "a") as f:
        f.write(f"{os.getpid()} {proc.pid}\n")


def broken(settings: dict[str, Any]) -> None:
    raise RuntimeError(f"no warm-up today ({settings.get('why')})")


_kernels: list[Any] = []


def warm_kernel(settings: dict[str, Any]) -> None:
    """Keep a real ipykernel, started as a pool would (jupyter_client, the worker's
    environment); append ``<worker pid> <kernel pid>`` to ``settings["record"]``."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    with warm.starting():
        km.start_kernel(stdout=warm.output_fd(), stderr=warm.output_fd())
        pid = km.provisioner.process.pid  # type: ignore[union-attr]
        warm.keep(pid)
    _kernels.append(km)
    with open(settings["record"], "a") as f:
        f.write(f"{os.getpid()} {pid}\n")
