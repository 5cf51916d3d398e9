"""Kernels the server starts know its root directory (``BGTASKS_ROOT``): how a notebook
names another notebook for a notebook job (paths of jobs are relative to the root)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


async def test_kernels_get_the_root_dir_and_the_server_env_does_not(bgtasks_app: Any) -> None:
    # When the server starts a kernel
    km = bgtasks_app.kernel_manager
    kernel_id = await km.start_kernel()
    try:
        pid = km.get_kernel(kernel_id).provisioner.pid
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().partition("=")[::2] for item in raw if item)
        # Then the kernel's environment holds the server's root_dir, absolute
        assert env["BGTASKS_ROOT"] == os.path.abspath(bgtasks_app.root_dir)
        assert os.path.isabs(env["BGTASKS_ROOT"])
    finally:
        await km.shutdown_kernel(kernel_id, now=True)
    # And the server's own environment (what terminals and workers inherit) does not
    assert "BGTASKS_ROOT" not in os.environ

