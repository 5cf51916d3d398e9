"""Kernels for notebook jobs: started on one asyncio loop thread per process, and a small
pool of ready ones per kernel name in a process worker.

Why a loop of its own: jupyter_client's asynchronous clients belong to the loop they were
made on, and nbclient's own set-up adds SIGINT/SIGTERM handlers to the loop when it runs
in the main thread, where a process worker's SIGTERM is a task's cancel
(``executors/signals.py``). So every kernel of this process lives on one daemon thread's
loop (:func:`loop`), and a job's thread only waits for it.

Why a pool: a kernel takes ~0.7 s to start and be ready (most of it the interpreter and
``import ipykernel``), a notebook cell on a ready one ~10 ms. A process worker that ran a
notebook job keeps ``kernels`` ready kernels per kernel name (:func:`warm` fills the
``python3`` one), refilled in the background after each take. A kernel runs one job and is
then killed: no state carries from one job to the next. Kept kernels are registered with
:mod:`bgtasks_ext.core.warm` so the worker's sweep of a task's leftovers spares them; they
die with their worker (ipykernel also exits when its parent process goes).

Kernels never get the server's ``BGTASKS_URL``/``BGTASKS_TOKEN``: a notebook job is not a
kernel the user opened, and a worker's environment has neither (removed here anyway).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import shutil
import tempfile
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Coroutine, TypeVar

from ..core import warm as kept
from ..core.constants import ENV_TOKEN, ENV_URL

T = TypeVar("T")

STARTUP_TIMEOUT = 60.0
"""Seconds a kernel may take to start and answer (a slow first import on a busy host)."""
CHDIR_TIMEOUT = 10.0
"""Seconds a pooled kernel gets to move into its job's folder (it is idle: a reply takes
milliseconds) before the job gives up on it and starts its own."""
_HISTORY = "--HistoryManager.hist_file=:memory:"
"""As nbclient does: a job's kernel writes no IPython history (and never locks its file)."""

IMPORTS = threading.RLock()
"""Held around every import of the Jupyter stack by this package (the warm thread, a job's
thread, the kernel loop): three threads importing one module graph in different orders
can meet in Python's import deadlock avoidance and see a half-imported module."""
_client_imported = False

_loop: asyncio.AbstractEventLoop | None = None
_background: set[asyncio.Future[None]] = set()
_loop_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """This process's kernel loop, started on a daemon thread at the first call."""
    global _loop
    with _loop_lock:
        if _loop is None:
            new = asyncio.new_event_loop()
            threading.Thread(target=new.run_forever, name="bgtasks-kernels", daemon=True).start()
            _loop = new
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the kernel loop; a future the calling thread can wait on."""
    return asyncio.run_coroutine_threadsafe(coro, loop())


@dataclass(eq=False)
class Kernel:
    """A started, ready kernel and the client that talks to it (on the kernel loop)."""

    name: str
    km: Any
    """jupyter_client ``AsyncKernelManager``."""
    kc: Any
    """Its ``AsyncKernelClient``, channels started, ``wait_for_ready`` passed."""
    pid: int | None
    pooled: bool = False
    """Started ahead for the pool (kept) rather than for one job."""
    dead: bool = field(default=False)

    async def chdir(self, path: str) -> None:
        """Move a pooled kernel into its job's directory: a silent execute (no output,
        no history), waiting for its reply."""
        code = f"import os as __bgtasks_os; __bgtasks_os.chdir({path!r}); del __bgtasks_os"
        msg_id = self.kc.execute(code, silent=True, store_history=False)
        while True:
            reply = await self.kc.get_shell_msg(timeout=STARTUP_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content.get("status") != "ok":
            raise OSError(f"cannot enter {path}: {content.get('ename')}: {content.get('evalue')}")

    async def interrupt(self) -> None:
        if not self.dead:
            try:
                await self.km.interrupt_kernel()
            except Exception:  # noqa: BLE001, S110 - it may be gone already; the kill follows
                pass

    async def kill(self) -> None:
        """Kill the kernel's process group now (it is discarded: nothing to save), then
        clean up its connection files and sockets in the background."""
        if self.dead:
            return
        self.dead = True
        if self.pid is not None:
            kept.forget(self.pid)
        try:
            await self.km.provisioner.kill()
            # Reaped here, at once (jupyter_client polls every 0.1 s): a process worker's
            # sweep at the task's end must not find it as a leftover.
            process = getattr(self.km.provisioner, "process", None)
            for _ in range(500):
                if process is None or process.poll() is not None:
                    break
                await asyncio.sleep(0.002)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
        cleanup = asyncio.ensure_future(self._cleanup())
        _background.add(cleanup)  # held: the loop keeps only a weak reference to a task
        cleanup.add_done_callback(_background.discard)

    async def _cleanup(self) -> None:
        try:
            self.kc.stop_channels()
            await self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001, S110 - best effort: the process is dead
            pass


def kernel_env() -> dict[str, str]:
    """The environment a kernel starts with: this process's (a process worker's mark
    included, so that what it leaves is found after the worker died), without the
    server's URL and secret."""
    env = dict(os.environ)
    env.pop(ENV_URL, None)
    env.pop(ENV_TOKEN, None)
    return env


def import_client() -> None:
    """Import what starting a kernel takes (jupyter_client: ~0.3 s the first time), once."""
    global _client_imported
    if _client_imported:
        return
    with IMPORTS:
        import jupyter_client.asynchronous  # noqa: F401 - the kernel client's class
        import jupyter_client.manager  # noqa: F401
        import jupyter_client.provisioning.local_provisioner  # noqa: F401

        from . import forkserver  # noqa: F401
        _client_imported = True


async def start_kernel(name: str, cwd: str, *, pooled: bool = False) -> Kernel:
    """Start kernel ``name`` in ``cwd`` and wait until it answers. A pooled one is kept
    (:func:`bgtasks_ext.core.warm.keep`) from the moment its process exists."""
    import_client()
    from jupyter_client.manager import AsyncKernelManager

    # ipc: no TCP ports to pick, and no "running over TCP without encryption" warning;
    # its socket paths must be absolute (the kernel runs in another directory) and short
    base = os.path.join(_socket_dir(), uuid.uuid4().hex[:12])
    km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=base,
                            connection_file=base + ".json")
    if _pool is not None:
        # A process worker with a pool: this interpreter's ipykernel is forked from a
        # process that imported it once (forkserver.py); other kernels launch as usual.
        from . import forkserver

        forkserver.use_for(km)
    out = kept.output_fd()
    with kept.starting():  # a sweep meanwhile waits until the new process is kept
        try:
            await km.start_kernel(cwd=cwd, env=kernel_env(), extra_arguments=[_HISTORY],
                                  stdout=out, stderr=out)
        except BaseException:
            # Cancelled (its job went away) or failed once the process existed: a
            # kernel forked by the fork server is spared by the worker's sweep (kept
            # tree), so nobody else would ever end it.
            provisioner = getattr(km, "provisioner", None)
            if provisioner is not None and provisioner.has_process:
                await Kernel(name, km, _NoClient(), getattr(provisioner, "pid", None)).kill()
            raise
        pid = getattr(km.provisioner, "pid", None)
        if pooled and pid is not None:
            kept.keep(pid)
    kernel = Kernel(name, km, None, pid, pooled)
    try:
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        kc.allow_stdin = False
        kernel.kc = kc
    except BaseException:
        kernel.kc = _NoClient()
        await kernel.kill()
        raise
    return kernel


_sockets: str | None = None


def _socket_dir() -> str:
    """This process's directory for its kernels' connection files and sockets (a unix
    socket path must stay under ~100 bytes: no deep temp paths): ``<tmp>/bgtasks-kernels-
    <uid>/<pid>``. A worker may end without running ``atexit`` (killed, ``os._exit``), so
    each new one also removes the directories of processes that are gone."""
    global _sockets
    with _loop_lock:
        if _sockets is None:
            _sockets = _own_dir()
            atexit.register(shutil.rmtree, _sockets, True)
        return _sockets


def _own_dir() -> str:
    base = os.path.join(tempfile.gettempdir(), f"bgtasks-kernels-{os.getuid()}")
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        info = os.lstat(base)
        if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(base):
            raise PermissionError(base)  # not ours alone: use a fresh private one
    except OSError:
        return tempfile.mkdtemp(prefix="bgtasks-kernels-")
    for entry in os.listdir(base):
        if entry.isdigit() and not os.path.exists(f"/proc/{entry}"):
            shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
    own = os.path.join(base, str(os.getpid()))
    shutil.rmtree(own, ignore_errors=True)  # a dead process's, whose pid this one got
    os.makedirs(own, mode=0o700)
    return own


class _NoClient:
    def stop_channels(self) -> None:
        pass


class Pool:
    """Ready kernels per kernel name, ``size`` of each, started in ``home``."""

    def __init__(self, size: int, home: str) -> None:
        self.size = size
        self.home = home
        self._queues: dict[str, deque[concurrent.futures.Future[Kernel]]] = {}
        self._lock = threading.Lock()

    def fill(self, name: str) -> None:
        """Start kernels ``name`` until ``size`` are ready or on their way."""
        with self._lock:
            queue = self._queues.setdefault(name, deque())
            while len(queue) < self.size:
                queue.append(submit(start_kernel(name, self.home, pooled=True)))

    def take(self, name: str) -> concurrent.futures.Future[Kernel] | None:
        """The oldest kernel ``name`` (ready, or the one that started first), or ``None``
        when there is none; the pool starts a new one in its place."""
        with self._lock:
            queue = self._queues.get(name)
            taken = queue.popleft() if queue else None
        self.fill(name)
        return taken


def _discard(fut: concurrent.futures.Future[Kernel]) -> None:
    """Kill the kernel of ``fut`` once it is there (a job that no longer wants it)."""
    if fut.cancelled() or fut.exception() is not None:
        return
    submit(fut.result().kill())


def discard(fut: concurrent.futures.Future[Kernel]) -> None:
    """A job that asked for the kernel of ``fut`` no longer wants it: stop its start, or
    kill it once it is there."""
    fut.cancel()
    fut.add_done_callback(_discard)


_pool: Pool | None = None


def pool() -> Pool | None:
    """This process's pool: only in a process worker whose kind was warmed (``None``
    elsewhere: each job starts its own kernel)."""
    return _pool


def make_pool(size: int, home: str) -> Pool | None:
    """Set up this process's pool (once; ``size`` 0: none)."""
    global _pool
    with _loop_lock:
        if _pool is None and size > 0:
            _pool = Pool(size, home)
    return _pool


async def acquire(name: str, cwd: str) -> Kernel:
    """A kernel ``name`` working in ``cwd``: from the pool when there is one (moved into
    ``cwd``, no longer kept), else started for this job. Runs on the kernel loop."""
    current = _pool
    fut = current.take(name) if current is not None else None
    if fut is not None:
        wrapped = asyncio.wrap_future(fut)
        try:
            kernel = await asyncio.shield(wrapped)
        except asyncio.CancelledError:
            fut.add_done_callback(_discard)  # the job is gone: the kernel must not stay
            raise
        except Exception:  # noqa: BLE001 - a pooled start failed: start one for the job
            kernel = None
        if kernel is not None:
            if kernel.pid is not None:
                kept.forget(kernel.pid)  # the job's own from now on
            try:
                # A kept kernel may have died while it waited (killed by hand, out of
                # memory): then the job starts its own rather than waiting on a dead one.
                if await kernel.km.is_alive():
                    await asyncio.wait_for(kernel.chdir(cwd), CHDIR_TIMEOUT)
                    return kernel
            except asyncio.CancelledError:
                await kernel.kill()
                raise
            except Exception:  # noqa: BLE001, S110 - not answering: discarded below
                pass
            await kernel.kill()
    return await start_kernel(name, cwd)
