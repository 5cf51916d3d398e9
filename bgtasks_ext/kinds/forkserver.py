"""A fork server for this interpreter's own ipykernel: kernels in ~0.1 s of CPU, not ~0.45 s.

A kernel started the usual way is a fresh interpreter that imports ipykernel, IPython,
zmq and tornado: ~0.45 s of CPU each, which caps a 2-core host at ~4 kernels a second,
below what a burst of short notebook jobs asks of the pool (each job discards its kernel).
The fork server is one process per worker that has imported all of that once and forks a
kernel per request (the multiprocessing ``forkserver`` idea, for kernels).

It plugs into jupyter_client as a kernel provisioner (:class:`ForkProvisioner`, a
``LocalProvisioner`` whose ``launch_kernel`` asks the fork server instead of ``Popen``),
so the kernel manager, its connection file, interrupt and shutdown work as for any
kernel. It forks only the interpreter's own ``python -m ipykernel_launcher`` command;
any other kernel launches as usual. Used only by a process worker's kernel pool
(:mod:`.kernelpool`); elsewhere kernels start the usual way.

Lifetime: the server dies with the worker (``PR_SET_PDEATHSIG``), is kept across tasks
(:func:`bgtasks_ext.core.warm.keep`: the worker's sweep spares it and its kernels), and
reaps its children. A forked kernel runs in a session of its own and sees the fork server
as its parent (``JPY_PARENT_PID``): when the fork server goes, ipykernel's parent poller
ends the kernel.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.provisioning.factory import KernelProvisionerFactory

from ..core import warm as kept

NAME = "bgtasks-fork-provisioner"
"""The provisioner's name (also its ``jupyter_client.kernel_provisioners`` entry point)."""
LAUNCHER = ["-m", "ipykernel_launcher"]
PRELOAD = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
    "ipykernel.comm", "ipykernel.iostream", "ipykernel.heartbeat", "ipykernel.eventloops",
    "ipykernel.parentpoller", "debugpy.server.api", "debugpy.adapter", "IPython.core.oinspect",
    "IPython.core.debugger", "IPython.core.completer", "IPython.core.completerlib",
    "IPython.core.history", "IPython.extensions.storemagic", "tornado.ioloop", "tornado.gen",
    "tornado.locks", "tornado.queues", "tornado.platform.asyncio", "zmq.asyncio", "sqlite3",
    "pdb", "pydoc", "xmlrpc.server", "gzip", "mimetypes", "email.parser", "unicodedata",
    "faulthandler", "code", "cmd", "bdb",
)
"""What a kernel's start imports (seen with ``-X importtime``), imported once by the fork
server: a forked kernel then only builds its shell and sockets (~0.1-0.2 s)."""


# -- the fork server process ---------------------------------------------------------------
def serve() -> None:
    """The fork server's main: one JSON request per line on stdin
    (``{"argv", "cwd", "env"}``), one answer per line on stdout (``{"pid"}`` or ``{"error"}``)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, _reap)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - an optional part (debugpy) may be missing
            continue
    out = sys.stdout
    _answer(out, {"ready": os.getpid()})
    for line in sys.stdin:
        try:
            req = json.loads(line)
            pid = os.fork()
        except Exception as exc:  # noqa: BLE001 - a bad request or fork failure: say so
            _answer(out, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        if pid == 0:
            _kernel(req)  # never returns
        _answer(out, {"pid": pid})


def _answer(out: IO[str], msg: dict[str, Any]) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def _reap(signum: int, frame: Any) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kernel(req: dict[str, Any]) -> None:
    """In the forked child: become what ``python -m ipykernel_launcher ARGS`` would be."""
    code = 1
    try:
        os.setsid()
        _name(b"ipykernel")  # as ps and top show it (its command line is the fork server's)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(2, 1)  # the fork server's stderr: the worker's real output
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        os.environ["JPY_PARENT_PID"] = str(os.getppid())
        sys.argv = ["ipykernel_launcher", *req["argv"]]
        from ipykernel.kernelapp import IPKernelApp

        # parent_handle's default is read from the environment at import, in the server:
        # given here, so the kernel polls its parent (the fork server) and ends with it
        IPKernelApp.launch_instance(argv=req["argv"], parent_handle=os.getppid())
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - shown on stderr, then the child ends
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _name(name: bytes) -> None:
    import ctypes

    _prctl(15, ctypes.c_char_p(name))  # PR_SET_NAME


def _prctl(option: int, arg: Any) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        pass


# -- the worker's side ---------------------------------------------------------------------
class ForkServer:
    """The worker's handle on its fork server (started at the first request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        """Fork a kernel ``python -m ipykernel_launcher *argv``; its pid."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                proc = self._proc = self._start(env)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"argv": argv, "cwd": cwd, "env": env}) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline() or '{"error": "the fork server ended"}')
        if "pid" not in answer:
            raise RuntimeError(f"cannot fork a kernel: {answer.get('error')}")
        return int(answer["pid"])

    def _start(self, env: dict[str, str]) -> subprocess.Popen[str]:
        """The server, with the environment of the kernels it will fork (that of the first)."""
        out = kept.output_fd()
        with kept.starting():
            # Not the worker's directory on sys.path (a user's thread.py there would be
            # imported in place of a module some library asks for): '' dropped, run in /.
            proc = subprocess.Popen(
                [sys.executable, "-c", "import sys; del sys.path[0]; "
                 "from bgtasks_ext.kinds.forkserver import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out, text=True,
                env=env, cwd="/", start_new_session=True)
            kept.keep(proc.pid)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if "ready" not in ready:
            proc.kill()
            raise RuntimeError(f"the kernel fork server did not start (it said {ready[:200]!r})")
        return proc

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                kept.forget(self._proc.pid)
                self._proc.kill()
                self._proc.wait()
                self._proc = None


_server = ForkServer()


class _Forked:
    """The ``Popen`` face of a forked kernel (a child of the fork server, not of this
    process): alive while ``/proc`` shows it running; the fork server reaps it."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        return None
            except (OSError, IndexError):
                pass
            self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.01)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """``LocalProvisioner`` that forks this interpreter's ipykernel from the fork server."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        if len(cmd) < 3 or cmd[0] != sys.executable or cmd[1:3] != LAUNCHER:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        env = dict(kwargs.get("env") or os.environ)
        pid = _server.spawn(cmd[3:], cwd, env)
        self.process = _Forked(pid)  # type: ignore[assignment]  # quacks as Popen does
        self.pid = pid
        self.pgid = pid  # the kernel made its own session
        self.cwd = cwd
        return self.connection_info


def register() -> None:
    """Make :class:`ForkProvisioner` known to jupyter_client in this process (as its entry
    point would, also in a source checkout that is not installed)."""
    from importlib.metadata import EntryPoint

    factory = KernelProvisionerFactory.instance()
    if NAME not in factory.provisioners:
        factory.provisioners[NAME] = EntryPoint(
            name=NAME, value=f"{__name__}:ForkProvisioner", group="jupyter_client.kernel_provisioners")


def use_for(km: Any) -> None:
    """Have kernel manager ``km`` (not started yet) launch through the fork server."""
    register()
    km.kernel_spec.metadata["kernel_provisioner"] = {"provisioner_name": NAME, "config": {}}
