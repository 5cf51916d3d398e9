"""The server's side of one worker process: its socket, its exit, its signals.

A handle is owned by the process executor's loop thread; nothing here is locked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from typing import Mapping

from ..core.ports import Job
from ..core.warm import WORKER_MARK
from . import protocol

WORKER_MODULE = "bgtasks_ext.executors.worker"
USE_PIDFD = hasattr(os, "pidfd_open")
"""Watch exits through pidfds (Linux 5.3+); elsewhere the supervisor polls."""
_RECV_SIZE = 256 * 1024


class WorkerHandle:
    """One spawned worker: ``python -m bgtasks_ext.executors.worker FD``.

    Spawned, never forked from the server: a fork would copy the server's threads,
    locks and event loop into the child, and ``spawn`` also lets the worker run
    under another interpreter than the server's.
    """

    def __init__(self, python: str, env: Mapping[str, str]) -> None:
        parent, child = socket.socketpair()
        self.mark = uuid.uuid4().hex
        """In the worker's environment (``WORKER_MARK``), so in its children's: what it
        kept is found by it once the worker is gone (core/warm.py)."""
        try:
            self.proc = subprocess.Popen(
                [python, "-m", WORKER_MODULE, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**env, WORKER_MARK: self.mark},
                close_fds=True,
                # Its own session: a signal to the server's process group (systemd's
                # stop, a terminal's) is the server's to handle, not each worker's.
                start_new_session=True,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.python = python
        self.pid = self.proc.pid
        self.sock = parent
        self.reader = protocol.MessageReader()
        self.pidfd: int | None = None
        if USE_PIDFD:
            try:
                self.pidfd = os.pidfd_open(self.pid)
            except OSError:  # kernels before 5.3
                self.pidfd = None
        self.ready = False
        self.eof = False
        self.gone = False
        self.retiring = False
        """Told to shut down: never given another job."""
        self.job: Job | None = None
        self.cancelling = False
        """Cancel was asked for the current job: its end, whatever kills it, is ``cancelled``."""
        self.start_error: str | None = None
        """Why the worker was refused at ``ready`` (a protocol mismatch, say)."""
        self.signalled: int | None = None
        """The last signal the executor sent to stop the current job."""
        self.tasks_done = 0
        self.warmed: set[str] = set()
        """The warm functions this worker was told to call (``warm`` messages sent)."""

    # -- I/O ----------------------------------------------------------------------
    def send(self, msg: protocol.Message, data: bytes | None = None) -> bool:
        """Send one message; ``False`` when the worker is gone (its exit reports it)."""
        return self.send_chunks(protocol.encode(msg, data))

    def send_chunks(self, chunks: list[bytes]) -> bool:
        if self.eof or self.gone:
            return False
        try:
            for chunk in chunks:
                self.sock.sendall(chunk)
        except OSError:
            return False
        return True

    def receive(self) -> list[protocol.Frame] | None:
        """Read what is available (the socket is readable); ``None`` at EOF."""
        try:
            chunk = self.sock.recv(_RECV_SIZE)
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return None
        return self.reader.feed(chunk)

    def drain(self) -> list[protocol.Frame]:
        """Everything the worker wrote before it exited (called once it has)."""
        frames: list[protocol.Frame] = []
        if self.eof:
            return frames
        self.sock.setblocking(False)
        try:
            while True:
                chunk = self.sock.recv(_RECV_SIZE)
                if not chunk:
                    break
                frames.extend(self.reader.feed(chunk))
        except (OSError, protocol.ProtocolError):
            pass
        self.eof = True
        return frames

    # -- process ------------------------------------------------------------------
    def kill(self, sig: int) -> None:
        if self.gone:
            return
        try:
            # A pidfd cannot be recycled, so this never hits a stranger with our old pid.
            if self.pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self.pidfd, sig)
            else:
                self.proc.send_signal(sig)
        except (ProcessLookupError, OSError):
            pass

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def reap(self) -> int:
        """Wait for the (exited or killed) process and release its descriptors."""
        self.gone = True
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.close()
        return code

    def close(self) -> None:
        self.sock.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def describe_exit(self) -> str:
        return describe_exit(self.proc.returncode)


def describe_exit(code: int | None) -> str:
    """``worker exited with code 3`` / ``worker was killed by SIGKILL``."""
    if code is None:
        return "worker stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker was killed by {name}"
    return f"worker exited with code {code}"
