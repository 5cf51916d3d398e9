"""The child side of the process executor: ``python -m bgtasks_ext.executors.worker FD``.

It may run under another interpreter than the server's (a kernel's
``sys.executable``): anything with ``bgtasks_ext`` importable will do, which is why
it speaks the JSON protocol of :mod:`.protocol` and never pickles anything for the
server to load.

Three threads:

- the **main** thread runs one task at a time with a :class:`TaskContext` bound, so
  ``progress()`` and ``print()`` reach the task's record; a SIGTERM raises
  :class:`TaskCancelled` in it, which stops pure-Python loops and blocking calls
  while the worker lives on;
- a **reader** thread receives ``run``, ``cancel`` and ``shutdown``; a cancel sets the
  running task's flag at once, even while the main thread is busy;
- a **flusher** thread sends log text and the last progress that the task left
  unsent (say, before a long blocking call) at most :data:`FLUSH_INTERVAL` late.

And, once a kind with a ``warm`` function ran in this worker's pool, a **warm** thread
per such kind calls it (``warm`` message): it may import the kind's modules and start
processes that later tasks take over, kept alive across tasks (:mod:`bgtasks_ext.core.warm`;
the leftover sweep spares them). Everything this worker started ends when it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import queue
import signal
import socket
import sys
import termios
import threading
import time
import traceback
from typing import Any

# Pre-import what nearly every task needs, so that no job pays for it.
import cloudpickle  # noqa: F401 - pre-imported: tasks and payloads need it
import pydantic  # noqa: F401

from bgtasks_ext.core import context, output, warm
from bgtasks_ext.core.attempt import run_attempt, run_kind
from bgtasks_ext.core.context import FLUSH_INTERVAL, TaskContext
from bgtasks_ext.core.models import TaskError
from bgtasks_ext.core.registry import load_ref
from bgtasks_ext.core.ports import Outcome, OutcomeStatus
from bgtasks_ext.executors import proctree
from bgtasks_ext.executors.isolation import MemoryLimit, Snapshot
from bgtasks_ext.executors import protocol
from bgtasks_ext.executors.signals import SigtermGuard, die_with_parent

LEFTOVER_GRACE = 0.5
"""Seconds a process the task left running gets after SIGTERM, before SIGKILL."""
LOG_SEND_CHARS = 64 * 1024
"""Characters of buffered log text that are sent without waiting for the interval."""

_Job = tuple[protocol.Message, "bytes | None", threading.Event]

_libc_fflush = ctypes.CDLL(ctypes.util.find_library("c") or None).fflush


class _SocketSink:
    """One task's :class:`ProgressSink`: progress goes out at once (the context
    already coalesced it), log text is buffered and sent in chunks."""

    __slots__ = ("task_id", "worker", "buf", "size", "next_flush")

    def __init__(self, task_id: str, worker: Worker) -> None:
        self.task_id = task_id
        self.worker = worker
        self.buf: list[str] = []
        self.size = 0
        self.next_flush = time.monotonic() + FLUSH_INTERVAL

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        # Coerced here so that a numpy number cannot break the JSON encoding.
        self.worker.send(protocol.progress_msg(
            self.task_id, float(current), None if total is None else float(total),
            None if message is None else str(message),
        ))

    def log(self, text: str) -> None:
        w = self.worker
        entered = w.guard.enter()
        try:
            with w.buf_lock:
                self.buf.append(text)
                self.size += len(text)
            if self.size >= LOG_SEND_CHARS or time.monotonic() >= self.next_flush:
                self.flush_log()
        finally:
            w.guard.leave(entered)

    def flush_log(self) -> None:
        w = self.worker
        entered = w.guard.enter()
        try:
            # Take the text under the send lock so that chunks leave in the order written.
            with w.send_lock:
                with w.buf_lock:
                    text = "".join(self.buf)
                    self.buf.clear()
                    self.size = 0
                    self.next_flush = time.monotonic() + FLUSH_INTERVAL
                if text:
                    protocol.send(w.sock, protocol.log_msg(self.task_id, text))
        finally:
            w.guard.leave(entered)


class Worker:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # Re-entrant: the flusher holds it across ``ctx.flush()``, whose send takes it
        # again; holding it there keeps a progress value read by the flusher from
        # overtaking a newer one the main thread is sending.
        self.send_lock = threading.RLock()
        self.flush_lock = threading.Lock()
        self.buf_lock = threading.Lock()
        self.guard = SigtermGuard()
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.latest: tuple[str, threading.Event] | None = None
        self.current: tuple[_SocketSink, TaskContext] | None = None
        self.busy = threading.Event()
        self.home = os.getcwd()
        self.snapshot = Snapshot()
        """What each task's changes to the process are undone to (isolation.py)."""
        self.tasks_run = 0
        self.real_out = 1
        self.pipe_r = -1
        self.warmed: set[str] = set()
        """The warm functions called (or being called) here: each once per worker."""

    def send(self, msg: protocol.Message, data: bytes | None = None) -> None:
        entered = self.guard.enter()
        try:
            with self.send_lock:
                protocol.send(self.sock, msg, data)
        finally:
            self.guard.leave(entered)

    # -- reader thread ------------------------------------------------------------
    def read_loop(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            while True:
                frame = protocol.read_message(stream)
                if frame is None:
                    break
                msg, data = frame
                op = msg["op"]
                if op == "run":
                    # The cancel flag exists from the moment the job arrives, so a cancel
                    # that overtakes the main thread still lands.
                    event = threading.Event()
                    self.latest = (msg["task_id"], event)
                    self.jobs.put((msg, data, event))
                elif op == "cancel":
                    latest = self.latest
                    if latest is not None and latest[0] == msg["task_id"]:
                        latest[1].set()
                elif op == "warm":
                    self.start_warm(msg["ref"], msg.get("settings") or {})
                elif op == "shutdown":
                    self.jobs.put(None)
                    return
        except (OSError, protocol.ProtocolError):
            pass
        # The server is gone (it closed the socket or died): nothing may outlive it.
        end_all()
        os._exit(0)

    # -- warm threads --------------------------------------------------------------
    def start_warm(self, ref: str, settings: dict[str, Any]) -> None:
        """Call a kind's warm function once, on its own thread: a task never waits for it."""
        if ref in self.warmed:
            return
        self.warmed.add(ref)
        threading.Thread(target=self.run_warm, args=(ref, settings), name=f"bgtasks-warm-{ref}",
                         daemon=True).start()

    def run_warm(self, ref: str, settings: dict[str, Any]) -> None:
        # What it prints goes to the worker's real output (the server's log), not to the
        # log of the task running meanwhile. Not paced: it never reports progress, and a
        # paced context would wake the pacer thread for as long as the worker lives.
        ctx = TaskContext(f"warm:{ref}", _RealOut(self.real_out))
        context.bind(ctx)
        context._pacer.remove(ctx)
        try:
            load_ref(ref)(settings)
        except BaseException as exc:  # noqa: BLE001 - a warm-up never takes the worker down
            text = "".join(traceback.format_exception(exc))
            self.write_real(f"[bgtasks] worker {os.getpid()}: warm-up {ref} failed:\n{text}")

    def write_real(self, text: str) -> None:
        try:
            os.write(self.real_out, text.encode("utf-8", "replace"))
        except OSError:
            pass

    # -- flusher thread -----------------------------------------------------------
    def flush_loop(self) -> None:
        while True:
            self.busy.wait()
            time.sleep(FLUSH_INTERVAL)
            with self.flush_lock:
                current = self.current
                if current is not None:
                    sink, ctx = current
                    try:
                        with self.send_lock:
                            sink.flush_log()
                            ctx.flush()
                    except OSError:
                        return  # the server is gone; the reader exits the process
                    except Exception:  # a value progress() took that cannot be sent
                        pass
            # Sleep until a task runs again; clear-then-recheck so no start is missed.
            self.busy.clear()
            if self.current is not None:
                self.busy.set()

    # -- fd capture thread ----------------------------------------------------------
    def capture_fds(self) -> None:
        """Point fds 1 and 2 at a pipe, so what a task's C code or child processes write
        (``os.system``, a compiled library's ``printf``) reaches its log too; what is
        written while no task runs goes on to the worker's real stdout."""
        r, w = os.pipe()
        self.real_out = os.dup(1)
        warm.set_output_fd(self.real_out)
        self.pipe_r = r
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(w)
        threading.Thread(target=self.fd_loop, name="bgtasks-fds", daemon=True).start()

    def fd_loop(self) -> None:
        while True:
            try:
                data = os.read(self.pipe_r, 65536)
            except OSError:
                return
            if not data:
                return
            current = self.current
            if current is not None:
                current[1].log(data.decode("utf-8", "replace"))
            else:
                try:
                    os.write(self.real_out, data)
                except OSError:
                    pass

    def drain_fds(self, timeout: float = 0.05) -> None:
        """At a task's end: flush C stdio and wait (briefly) until the fd thread has
        read everything written so far, so none of it is charged to the next task."""
        try:
            _libc_fflush(None)
        except Exception:  # noqa: S110 - no libc (another platform): nothing buffered there
            pass
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while time.monotonic() < deadline:
            try:
                fcntl.ioctl(self.pipe_r, termios.FIONREAD, buf)
            except OSError:
                return
            if int.from_bytes(buf, sys.byteorder) == 0:
                return
            time.sleep(0.002)

    # -- main thread --------------------------------------------------------------
    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self.guard.on_sigterm)
        self.capture_fds()
        output.install()
        threading.Thread(target=self.read_loop, name="bgtasks-reader", daemon=True).start()
        threading.Thread(target=self.flush_loop, name="bgtasks-flusher", daemon=True).start()
        self.send(protocol.ready_msg(os.getpid(), sys.executable))
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    return
                self.run_one(*job)
        finally:
            end_all()  # what warm functions kept dies with the worker

    def run_one(self, msg: protocol.Message, payload: bytes | None, event: threading.Event) -> None:
        task_id: str = msg["task_id"]
        sink = _SocketSink(task_id, self)
        ctx = TaskContext(
            task_id, sink, params=msg.get("params"), attempt=msg.get("attempt", 1),
            cancel_event=event, payload=payload, settings=msg.get("settings"),
        )
        # Undo what an earlier task may have changed: its SIGTERM handler, sys.stdout.
        if signal.getsignal(signal.SIGTERM) != self.guard.on_sigterm:
            signal.signal(signal.SIGTERM, self.guard.on_sigterm)
        # Marks the run in the environment its child processes inherit (proctree.py).
        os.environ[proctree.RUN_MARK] = f"{task_id}.{ctx.attempt}"
        memory = MemoryLimit(msg.get("memory_limit"))
        self.current = (sink, ctx)
        self.busy.set()
        try:
            with memory:
                # The guard is the window: a SIGTERM cancels only while the task's code runs.
                outcome = run_attempt(ctx, run_kind, msg["ref"], ctx, msg.get("cwd"), window=self.guard,
                                      max_result_bytes=msg.get("max_result_bytes"))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            self.drain_fds()
            # Under flush_lock: once this returns, the flusher cannot send anything
            # of this task after its done message.
            with self.flush_lock:
                self.current = None
        left = self.end_leftovers()
        if left:
            sink.log(f"[bgtasks] ended {len(left)} process(es) the task left running: "
                     f"{', '.join(map(str, left))}\n")
        problems = self.snapshot.restore()
        if memory.limit is not None and outcome.error is not None and outcome.error.type == "MemoryError":
            outcome = Outcome(OutcomeStatus.FAILED, error=TaskError(
                "MemoryError", f"the task went over its memory limit (task_memory_limit = "
                f"{memory.limit / 2**20:.0f} MiB)", outcome.error.traceback, reason="memory"))
        self.tasks_run += 1
        sink.flush_log()
        error = outcome.error.to_json() if outcome.error is not None else None
        has_result = outcome.result is not None
        # Retire (the supervisor starts a fresh worker) when what the task changed could
        # not be undone.
        retire = bool(problems)
        try:  # encoding fails before anything is written
            self.send(protocol.done_msg(task_id, outcome.status.value, outcome.preview, error, has_result,
                                        retire), outcome.result)
        except (TypeError, ValueError):  # an odd preview; the result bytes still hold the value
            self.send(protocol.done_msg(task_id, outcome.status.value, repr(outcome.preview)[:200], error,
                                        has_result, retire), outcome.result)

    def end_leftovers(self) -> list[int]:
        """End what the task started and left running (its orphans are ours: we are
        their subreaper), and collect their exit statuses. One system call when the
        task started nothing (the common case)."""
        os.environ.pop(proctree.RUN_MARK, None)
        if not _reap():
            return []  # no children at all
        me = os.getpid()
        # Spares what a kind keeps (core/warm.py); held so that a process a warm thread
        # is starting right now is kept before the tree is looked at.
        with warm.starting():
            left = proctree.end(lambda: proctree.descendants(me, warm.kept()), grace=LEFTOVER_GRACE)
        _reap()
        return left


class _RealOut:
    """The sink of a warm thread's context: its output goes to the worker's real stdout."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        pass

    def log(self, text: str) -> None:
        try:
            os.write(self.fd, text.encode("utf-8", "replace"))
        except OSError:
            pass


def end_all() -> None:
    """End every process this worker started, kept ones included (it is exiting)."""
    if _reap():
        me = os.getpid()
        proctree.end(lambda: proctree.descendants(me), grace=LEFTOVER_GRACE)
        _reap()


def _reap() -> bool:
    """Collect the exit status of every child that has ended; returns whether this
    process had any child at all."""
    had = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return had
        had = True
        if pid == 0:
            return True


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit("usage: python -m bgtasks_ext.executors.worker FD")
    # If the server died before this line, the reader sees EOF at once and exits.
    die_with_parent()
    # Ctrl-C in the server's terminal reaches its whole process group; the server
    # decides what happens to tasks, so a worker ignores it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Orphans of what a task starts become ours, so the task's tree stays findable.
    proctree.become_subreaper()
    sock = socket.socket(fileno=int(args[0]))
    Worker(sock).serve()
    sock.close()


if __name__ == "__main__":
    main()
