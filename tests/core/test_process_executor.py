"""The process executor with real spawned workers and a recording callbacks object."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import cloudpickle
import pytest

from bgtasks_ext.core.errors import TaskCancelled
from bgtasks_ext.core.ports import Job, Outcome
from bgtasks_ext.executors import worker_handle
from bgtasks_ext.executors.process import ProcessExecutor
from bgtasks_ext.executors.signals import SigtermGuard

pytestmark = pytest.mark.timeout(60)

REF = "tests.core.kinds_for_tests:"
GRACE = 0.5


class Recorder:
    """Real :class:`ExecutorCallbacks`: records every call, in order, thread-safely."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.cond = threading.Condition()
        self.claimed: list[str] = []
        self.progress_calls: dict[str, list[tuple[float, float | None, str | None]]] = {}
        self.logs: dict[str, list[str]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.ended_at: dict[str, float] = {}
        self.refuse = refuse or set()
        self.errors: list[str] = []
        self.claim_threads: dict[str, str] = {}

    def claim(self, task_id: str) -> bool:
        with self.cond:
            self.claimed.append(task_id)
            self.claim_threads[task_id] = threading.current_thread().name
            self.cond.notify_all()
        return task_id not in self.refuse

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        with self.cond:
            if task_id in self.outcomes:
                self.errors.append(f"progress after done for {task_id}")
            self.progress_calls.setdefault(task_id, []).append((current, total, message))

    def log(self, task_id: str, text: str) -> None:
        with self.cond:
            if task_id in self.outcomes:
                self.errors.append(f"log after done for {task_id}")
            self.logs.setdefault(task_id, []).append(text)

    def done(self, task_id: str, outcome: Outcome) -> None:
        with self.cond:
            if task_id in self.outcomes:
                self.errors.append(f"done twice for {task_id}")
            if task_id not in self.claimed or task_id in self.refuse:
                self.errors.append(f"done for unclaimed {task_id}")
            self.outcomes[task_id] = outcome
            self.ended_at[task_id] = time.monotonic()
            self.cond.notify_all()

    def wait_claimed(self, task_id: str, timeout: float = 20) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: task_id in self.claimed, timeout), f"{task_id} never claimed"

    def wait_done(self, task_id: str, timeout: float = 20) -> Outcome:
        with self.cond:
            assert self.cond.wait_for(lambda: task_id in self.outcomes, timeout), f"{task_id} never ended"
            return self.outcomes[task_id]


def job(task_id: str, name: str, **params: Any) -> Job:
    return Job(task_id=task_id, kind=name, ref=REF + name, params=params)


def alive(pid: int) -> bool:
    """Running or a zombie nobody reaped: either way a leak."""
    return Path(f"/proc/{pid}").exists()


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[ProcessExecutor, Recorder]]]:
    made: list[tuple[ProcessExecutor, Recorder]] = []

    def factory(workers: int = 2, refuse: set[str] | None = None, **kw: Any) -> tuple[ProcessExecutor, Recorder]:
        ex = ProcessExecutor(workers=workers, **kw)
        rec = Recorder(refuse)
        ex.start(rec)
        made.append((ex, rec))
        return ex, rec

    yield factory
    for ex, rec in made:
        pids = ex.pids()
        ex.shutdown(2)
        assert not [p for p in pids if alive(p)], "workers outlived shutdown"
        assert rec.errors == []


def test_a_kind_runs_and_its_result_comes_back_as_pickled_bytes(make: Any) -> None:
    # Given a pool of two workers
    ex, rec = make()
    # When a small and a big result are computed
    ex.submit(job("small", "add", a=2, b=3))
    ex.submit(job("big", "big_list", n=10_000))
    small, big = rec.wait_done("small"), rec.wait_done("big")
    # Then both finished; the bytes unpickle here to the values; the previews are
    # the value itself when small, a truncated repr when not
    assert small.status == "finished" and small.error is None
    assert small.result is not None and cloudpickle.loads(small.result) == 5
    assert small.preview == 5
    assert big.result is not None and cloudpickle.loads(big.result) == list(range(10_000))
    assert big.preview["type"] == "list" and len(big.preview["repr"]) <= 200


def test_every_job_from_many_threads_ends_exactly_once(make: Any) -> None:
    # Given two workers and four threads submitting, some one by one, some in bursts
    ex, rec = make(workers=2)

    def one_by_one(prefix: str) -> None:
        for i in range(200):
            ex.submit(job(f"{prefix}{i}", "noop"))
            rec.wait_done(f"{prefix}{i}")

    def burst(prefix: str) -> None:
        for i in range(1000):
            ex.submit(job(f"{prefix}{i}", "noop"))

    threads = [threading.Thread(target=f, args=(p,)) for f, p in
               [(one_by_one, "a"), (one_by_one, "b"), (burst, "c"), (burst, "d")]]
    # When they all run
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then every job was claimed and ended once, as finished (no lost wake-up)
    assert wait_until(lambda: len(rec.outcomes) == 2400, 30)
    assert sorted(rec.claimed) == sorted(rec.outcomes)
    assert {o.status for o in rec.outcomes.values()} == {"finished"}


def test_the_payload_reaches_the_task_as_bytes(make: Any) -> None:
    # Given a job carrying pickled input
    ex, rec = make(workers=1)
    payload = cloudpickle.dumps({"rows": [1, 2, 3]})
    # When it runs
    ex.submit(Job("p", "read_payload", REF + "read_payload", payload=payload))
    # Then the task unpickled it itself
    out = rec.wait_done("p")
    assert out.status == "finished" and out.preview == {"rows": [1, 2, 3]}


def test_a_million_progress_calls_arrive_coalesced_with_the_last_value(make: Any) -> None:
    # Given a task that reports progress a million times as fast as it can
    ex, rec = make(workers=1)
    ex.submit(job("c", "chatty", n=1_000_000))
    # When it ends
    assert rec.wait_done("c").status == "finished"
    # Then only a few messages crossed, and the last one is the final value
    calls = rec.progress_calls["c"]
    assert 1 <= len(calls) <= 300
    assert calls[-1] == (1_000_000, 1_000_000, "chatting")


def test_print_output_lands_in_the_log_in_a_few_chunks(make: Any) -> None:
    # Given a task that prints 2,000 lines and one line to stderr
    ex, rec = make(workers=1)
    ex.submit(job("p", "printer", lines=2000))
    # When it ends
    assert rec.wait_done("p").preview == "printed"
    # Then every line is in the log, in order, sent in far fewer messages than writes
    text = "".join(rec.logs["p"])
    assert text == "".join(f"line {i}\n" for i in range(2000)) + "to stderr\n"
    assert len(rec.logs["p"]) < 50


def test_output_of_child_processes_and_c_code_lands_in_the_log(make: Any) -> None:
    # Given a task whose output bypasses sys.stdout (a shell writing to fds 1 and 2)
    ex, rec = make(workers=1)
    ex.submit(job("s", "shell_echo", text="hello-fd"))
    assert rec.wait_done("s").status == "finished"
    # Then both lines are in its log
    text = "".join(rec.logs["s"])
    assert "hello-fd\n" in text and "hello-fd on stderr\n" in text
    # And a later task's log does not get any of it
    ex.submit(job("t", "printer", lines=1))
    assert rec.wait_done("t").status == "finished"
    assert "hello-fd" not in "".join(rec.logs["t"])


def test_progress_and_log_left_unsent_arrive_while_the_task_blocks(make: Any) -> None:
    # Given a task whose last progress and print were held back by coalescing, and
    # which then blocks for long
    ex, rec = make(workers=1)
    ex.submit(job("r", "report_then_block"))
    # Then both arrive anyway, while it still runs
    assert wait_until(lambda: rec.progress_calls.get("r", [])[-1:] == [(2, 10, "almost")])
    assert wait_until(lambda: "".join(rec.logs.get("r", [])) == "hello\n")
    assert "r" not in rec.outcomes
    ex.cancel("r", GRACE)
    assert rec.wait_done("r").status == "cancelled"


def test_an_exception_fails_the_task_with_its_traceback(make: Any) -> None:
    ex, rec = make(workers=1)
    # When the task raises
    ex.submit(job("b", "boom"))
    out = rec.wait_done("b")
    # Then it failed with the type, message and the task's own frames
    assert out.status == "failed" and out.result is None and out.error is not None
    assert out.error.type == "ValueError"
    assert out.error.message == "boom from the task"
    assert "kinds_for_tests.py" in out.error.traceback and "in boom" in out.error.traceback
    assert "worker.py" not in out.error.traceback


def test_an_unpicklable_result_fails_with_a_clear_message(make: Any) -> None:
    ex, rec = make(workers=1)
    # When the task returns a lock
    ex.submit(job("u", "unpicklable"))
    out = rec.wait_done("u")
    # Then it failed, and the message says what could not be pickled
    assert out.status == "failed" and out.error is not None
    assert "cannot be pickled" in out.error.message and "lock" in out.error.message


@pytest.mark.parametrize("kind", ["spin", "block"])
def test_cancel_stops_a_loop_that_never_checks_and_the_worker_survives(make: Any, kind: str) -> None:
    # Given one worker (whose pid we learn) busy with a task that ignores the cancel
    # flag: a pure-Python loop, or a single C call
    ex, rec = make(workers=1)
    ex.submit(job("who1", "whoami"))
    pid = rec.wait_done("who1").preview["pid"]
    ex.submit(job("t", kind))
    rec.wait_claimed("t")
    time.sleep(0.1)
    # When it is cancelled
    asked = time.monotonic()
    ex.cancel("t", GRACE)
    out = rec.wait_done("t")
    # Then the SIGTERM after the grace ended it as cancelled, in good time...
    assert out.status == "cancelled"
    assert GRACE - 0.05 <= rec.ended_at["t"] - asked < 2 * GRACE + 1
    # ...without a SIGKILL: the same worker runs the next job
    ex.submit(job("who2", "whoami"))
    assert rec.wait_done("who2").preview["pid"] == pid


def test_cancel_escalates_to_sigkill_and_replaces_the_worker(make: Any) -> None:
    # Given one worker busy with a task that ignores SIGTERM and blocks
    ex, rec = make(workers=1)
    ex.submit(job("who1", "whoami"))
    pid = rec.wait_done("who1").preview["pid"]
    ex.submit(job("s", "stubborn"))
    rec.wait_claimed("s")
    time.sleep(0.1)
    # When it is cancelled
    asked = time.monotonic()
    ex.cancel("s", GRACE)
    out = rec.wait_done("s")
    # Then it ended cancelled (not worker_died) after both graces, not long after
    assert out.status == "cancelled" and out.error is None
    assert 2 * GRACE - 0.05 <= rec.ended_at["s"] - asked < 2 * GRACE + 2
    # And a new worker runs the next job
    ex.submit(job("who2", "whoami"))
    assert rec.wait_done("who2").preview["pid"] != pid
    assert wait_until(lambda: not alive(pid))


def test_cancelling_a_queued_job_drops_it_unclaimed(make: Any) -> None:
    # Given one worker busy and a job queued behind it
    ex, rec = make(workers=1)
    ex.submit(job("busy", "slow", seconds=0.5))
    ex.submit(job("queued", "add", a=1, b=1))
    rec.wait_claimed("busy")
    # When the queued job is cancelled
    ex.cancel("queued", GRACE)
    ex.submit(job("after", "add", a=2, b=2))
    # Then it is never claimed nor reported, and the queue moves on
    assert rec.wait_done("after").preview == 4
    assert "queued" not in rec.claimed and "queued" not in rec.outcomes


def test_a_refused_claim_drops_the_job(make: Any) -> None:
    # Given callbacks that refuse one claim (the task was cancelled meanwhile)
    ex, rec = make(workers=1, refuse={"no"})
    # When it and another job are submitted
    ex.submit(job("no", "add", a=1, b=1))
    ex.submit(job("yes", "add", a=1, b=2))
    # Then the refused one never runs and never ends; the other does
    assert rec.wait_done("yes").preview == 3
    assert "no" in rec.claimed and "no" not in rec.outcomes


@pytest.mark.parametrize(
    "kind, message",
    [("exit3", "worker exited with code 3"), ("kill_self", "worker was killed by SIGKILL")],
)
def test_a_worker_dying_fails_its_task_and_is_replaced(make: Any, kind: str, message: str) -> None:
    # Given two ready workers, one running a slow task
    ex, rec = make(workers=2)
    assert wait_until(lambda: len(ex.pids(ready=True)) == 2)
    ex.submit(job("slow", "slow", seconds=1.0))
    rec.wait_claimed("slow")
    # When the other worker's task kills its process
    ex.submit(job("die", kind))
    out = rec.wait_done("die")
    # Then that task failed with worker_died and how the worker ended
    assert out.status == "failed" and out.error is not None
    assert out.error.type == "WorkerDied" and out.error.reason == "worker_died"
    assert out.error.message == message
    # And the slow task on the other worker did not notice
    assert rec.wait_done("slow").preview == 1.0
    assert rec.ended_at["die"] < rec.ended_at["slow"]
    # And a replacement was spawned: two jobs run at once again
    ex.submit(job("a", "slow", seconds=0.3))
    ex.submit(job("b", "whoami"))
    assert rec.wait_done("b").status == "finished" and rec.wait_done("a").status == "finished"
    assert wait_until(lambda: len(ex.pids()) == 2)


def test_a_job_runs_under_the_interpreter_it_names(make: Any, tmp_path: Path) -> None:
    # Given a wrapper "interpreter" that records its pid and execs the real Python
    marker = tmp_path / "used"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho $$ >> "{marker}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    ex, rec = make(workers=1)
    # When a job names it
    ex.submit(Job("w", "whoami", REF + "whoami", python=str(wrapper)))
    ex.submit(job("own", "whoami"))
    # Then the job ran in a worker started through the wrapper (exec keeps the pid),
    # and a job without one ran in the default pool
    pid = rec.wait_done("w").preview["pid"]
    assert str(pid) in marker.read_text().split()
    assert rec.wait_done("own").preview["pid"] != pid


def test_a_missing_interpreter_fails_its_jobs(make: Any, tmp_path: Path) -> None:
    ex, rec = make(workers=1)
    # When a job names an interpreter that does not exist
    missing = str(tmp_path / "no-python")
    ex.submit(Job("m", "add", REF + "add", {"a": 1, "b": 1}, python=missing))
    out = rec.wait_done("m")
    # Then it failed, naming the interpreter; the default pool is unharmed
    assert out.status == "failed" and out.error is not None
    assert out.error.type == "WorkerStartFailed" and missing in out.error.message
    ex.submit(job("ok", "add", a=1, b=1))
    assert rec.wait_done("ok").preview == 2


def test_an_interpreter_that_cannot_start_workers_fails_its_jobs(make: Any, tmp_path: Path) -> None:
    # Given an "interpreter" that exits at once (say, without bgtasks_ext installed)
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    ex, rec = make(workers=1)
    # When a job names it
    ex.submit(Job("x", "add", REF + "add", {"a": 1, "b": 1}, python=str(broken)))
    # Then after a few attempts it fails instead of waiting forever
    out = rec.wait_done("x")
    assert out.status == "failed" and out.error is not None
    assert "died while starting" in out.error.message and "code 1" in out.error.message


def test_a_worker_speaking_another_protocol_version_is_refused(make: Any, tmp_path: Path) -> None:
    # Given an "interpreter" whose worker announces another protocol version (another
    # bgtasks_ext installed in a kernel's environment, say)
    fake = tmp_path / "fake_worker.py"
    fake.write_text(textwrap.dedent("""
        import socket, sys, time
        from bgtasks_ext.executors import protocol
        sock = socket.socket(fileno=int(sys.argv[-1]))
        msg = dict(protocol.ready_msg(0, "fake"), version=999)
        for chunk in protocol.encode(msg):
            sock.sendall(chunk)
        time.sleep(60)
    """))
    wrapper = tmp_path / "other-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    ex, rec = make(workers=1)
    # When a job names it
    ex.submit(Job("v", "add", REF + "add", {"a": 1, "b": 1}, python=str(wrapper)))
    # Then the job fails at once with a message saying what to install
    out = rec.wait_done("v")
    assert out.status == "failed" and out.error is not None
    assert "protocol 999" in out.error.message and "install" in out.error.message


def test_without_pidfds_deaths_are_still_seen(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a system without pidfds (older kernels, other Unixes)
    monkeypatch.setattr(worker_handle, "USE_PIDFD", False)
    ex, rec = make(workers=1)
    # When a worker dies mid-task
    ex.submit(job("d", "exit3"))
    out = rec.wait_done("d")
    # Then the death is reported and a new worker takes the next job
    assert out.error is not None and out.error.message == "worker exited with code 3"
    ex.submit(job("ok", "add", a=2, b=2))
    assert rec.wait_done("ok").preview == 4


def test_a_job_runs_in_its_cwd_and_the_worker_returns_home(make: Any, tmp_path: Path) -> None:
    ex, rec = make(workers=1)
    # When one job runs in a directory and the next names none
    ex.submit(Job("in", "whoami", REF + "whoami", cwd=str(tmp_path)))
    ex.submit(job("home", "whoami"))
    # Then the first saw that directory and the second the worker's own
    assert rec.wait_done("in").preview["cwd"] == str(tmp_path)
    assert rec.wait_done("home").preview["cwd"] == os.getcwd()


def test_shutdown_cancels_running_jobs_and_leaves_no_process(make: Any) -> None:
    # Given two workers, one blocked in a task
    ex, rec = make(workers=2)
    ex.submit(job("b", "block"))
    rec.wait_claimed("b")
    pids = ex.pids()
    assert len(pids) == 2
    # When the executor shuts down with a short grace
    t0 = time.monotonic()
    ex.shutdown(1.0)
    # Then the running job was reported cancelled, in time, and every worker is gone
    assert rec.outcomes["b"].status == "cancelled"
    assert time.monotonic() - t0 < 3
    assert [p for p in pids if alive(p)] == []
    assert ex.pids() == []


def test_workers_die_with_a_killed_server(tmp_path: Path) -> None:
    # Given a "server" process with two workers, one of them blocked in C code
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {sys.path!r}
        from bgtasks_ext.core.ports import Job
        from bgtasks_ext.executors.process import ProcessExecutor
        class CB:
            def claim(self, t): print("claimed", flush=True); return True
            def progress(self, *a): pass
            def log(self, *a): pass
            def done(self, *a): pass
        ex = ProcessExecutor(workers=2)
        ex.start(CB())
        ex.submit(Job("b", "block", "{REF}block"))
        while len(ex.pids()) < 2: time.sleep(0.01)
        time.sleep(0.5)
        print(*ex.pids(), flush=True)
        time.sleep(1000)
    """))
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "claimed"
        pids = [int(p) for p in server.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        # When the server is SIGKILLed (no chance to clean up)
        server.send_signal(signal.SIGKILL)
        server.wait()
        # Then its workers do not outlive it (a zombie left to init counts as gone)
        assert wait_until(lambda: not any(_running(p) for p in pids), 10)
    finally:
        server.kill()
        server.wait()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_sigterm_guard_defers_inside_the_send_path_and_fires_once() -> None:
    guard = SigtermGuard()
    # Given no task running: a SIGTERM is ignored
    guard.on_sigterm(signal.SIGTERM, None)
    # Given a task running, inside the worker's send path: the SIGTERM waits...
    guard.armed = True
    entered = guard.enter()
    guard.on_sigterm(signal.SIGTERM, None)
    # ...and is raised when the send is complete
    with pytest.raises(TaskCancelled):
        guard.leave(entered)
    # And once raised, a second SIGTERM cannot land in the worker's own cleanup
    guard.on_sigterm(signal.SIGTERM, None)
    assert not guard.armed


def test_an_idle_worker_takes_a_job_from_the_submitting_thread(make: Any) -> None:
    # Given warm workers, all idle
    ex, rec = make(workers=2)
    assert wait_until(lambda: len(ex.pids(ready=True)) == 2)
    # When a job is submitted (the engine does it from its writer thread, after the commit)
    ex.submit(job("fast", "add", a=1, b=2))
    # Then the submitting thread claimed and started it itself: no wake-up of the loop
    assert rec.claim_threads["fast"] == threading.current_thread().name
    assert rec.wait_done("fast").status == "finished"
    # And once every worker is busy, the loop queues the next ones and starts them in turn
    ex.submit(job("slow1", "slow", seconds=0.3))
    ex.submit(job("slow2", "slow", seconds=0.3))
    ex.submit(job("queued", "add", a=2, b=3))
    assert rec.wait_done("queued").status == "finished"
    assert rec.claim_threads["queued"] == "bgtasks-process"
    assert not rec.errors


def test_a_big_payload_is_sent_by_the_loop_not_the_submitting_thread(make: Any) -> None:
    # Given an idle worker, When a job with a payload bigger than a socket buffer is submitted
    from bgtasks_ext.executors.supervisor import TRY_START_BYTES

    ex, rec = make(workers=1)
    assert wait_until(lambda: len(ex.pids(ready=True)) == 1)
    payload = cloudpickle.dumps(b"x" * (4 * TRY_START_BYTES))
    ex.submit(Job(task_id="big", kind="read_payload", ref=REF + "read_payload", payload=payload))
    # Then the loop thread claimed and sent it (the submitter, the engine's writer, never blocks)
    assert rec.wait_done("big").status == "finished"
    assert rec.claim_threads["big"] == "bgtasks-process"
