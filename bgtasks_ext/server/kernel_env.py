"""How kernels started by this server find it, and nothing else does.

The REST base URL, the kernel secret and the server's root directory (so a kernel can
name a notebook relative to the root, as notebook jobs want it) go into the environment
of each kernel this server starts, through the kernel manager's ``env`` at kernel start (jupyter_client
hands it to the kernel provisioner, and keeps it for restarts). They are never put in
the server's own ``os.environ``: terminals, the process executor's workers and
anything else the server spawns inherit that, and must not hold the secret.

jupyter_server has no hook for a kernel's environment (its session manager passes
``env`` only for kernels it starts for a session), so the kernel manager's
``start_kernel`` is wrapped on the instance, and unwrapped when the extension stops.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

from ..core.constants import ENV_ROOT, ENV_TOKEN, ENV_URL


class KernelEnv:
    """Adds ``{ENV_URL: url, ENV_TOKEN: secret}`` (and ``ENV_ROOT: root`` when given) to
    every kernel ``kernel_manager`` starts from :meth:`install` on, until :meth:`uninstall`."""

    def __init__(self, kernel_manager: Any, url: str, secret: str, root: str | None = None) -> None:
        self.kernel_manager = kernel_manager
        self.extra = {ENV_URL: url, ENV_TOKEN: secret}
        if root is not None:
            self.extra[ENV_ROOT] = os.path.abspath(root)
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        km = self.kernel_manager
        original = km.start_kernel
        extra = self.extra

        @functools.wraps(original)
        async def start_kernel(*args: Any, **kwargs: Any) -> Any:
            env = kwargs.get("env")
            kwargs["env"] = {**(env if isinstance(env, dict) else os.environ), **extra}
            return await original(*args, **kwargs)

        self._original = original
        km.start_kernel = start_kernel

    def uninstall(self) -> None:
        if self._original is not None:
            self.kernel_manager.start_kernel = self._original
            self._original = None
