"""Notebook jobs beside jupyter-scheduler 2.12.1, both driven by REST in the same run (issue 13).

- **peer**: jupyter-scheduler 2.12.1 in its own venv, ``benchmarks/.peer-venv`` (git-ignored),
  made here the first time (``pip install``) and reused after; the same ipykernel version as
  ours, so both run the same kernel. Its ``jupyter server`` runs from that venv with temp
  ``JUPYTER_*`` dirs (its SQLite database and staging area land there), jupyter-scheduler the
  only extension. A job: ``POST scheduler/jobs`` (``input_uri``, the one runtime environment
  it lists, ``output_formats: ["ipynb"]``), polled by ``GET scheduler/jobs/{id}`` until
  ``COMPLETED``/``FAILED`` (a new job reads ``STOPPED`` until it starts, so ``STOPPED`` ends
  a job only after a stop); stop: ``PATCH scheduler/jobs/{id} {"status": "STOPPED"}``.
- **ours**: ``tests/server_process.py`` (the project's venv), the product's defaults for the
  process executor (one worker per CPU) and for ``notebook_kernels``. A job: ``POST
  bgtasks/api/tasks {"kind": "notebook", "params": {"path": ...}}``, polled by ``GET
  tasks/{id}``; stop: ``POST tasks/{id}/cancel``.

Both servers run side by side, each with the same notebooks in its own temp root and the same
client (one keep-alive ``requests`` session). Single jobs alternate between the two sides
(peer, ours, peer, ...; a 1 s pause after each), so a machine that other work loads unevenly
over the run weighs on both alike; the bursts run one side after the other. "POST →
finished" is from just before the POST to the job's end as its server recorded it
(jupyter-scheduler's ``end_time``, our ``finished_at``; one machine, one clock), so the poll
rate (10 ms ours, 50 ms the peer's, whose every look is a database query) changes no figure.
Figures:

1. the first notebook job after the server is up (cold: ours imports the Jupyter stack in its
   workers only then); printed, no target;
2. trivial notebook (``x = 1``) POST → finished, median of 5 after one warm-up: ≤ 0.1× the
   peer's (SPEC §8);
3. 20 trivial jobs POSTed at once (20 client threads): jobs/s from the first POST to the last
   job's end time as the server recorded it: ≥ 5× the peer's (SPEC §8);
4. a 5-cell notebook POST → finished, median of 3: this benchmark's own target, ≤ 0.1× (the
   trivial job's, since the cells cost next to nothing);
5. stopping a running job: its cell writes its kernel's PID to a file and sleeps 60 s; once
   the file is there, stop → terminal state, and stop → that PID gone. This benchmark's
   target: terminal within 2 s and the kernel gone by then (issue 13: "nothing of the job
   keeps running").

Floors printed for the breakdown (the project's venv, in this process): nbclient alone (start
a kernel, run ``x = 1``, shut it down) and a bare kernel start until ready.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import done, p50, report  # noqa: E402

from tests.server_process import ServerProcess, free_port, stop_group  # noqa: E402

PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
PEER_VERSION = "2.12.1"
POLL = 0.01
"""Seconds between two looks at a job while it is stopped (both sides), and at our jobs."""
PEER_POLL = 0.05
"""Between two looks at a peer's job: each ``GET scheduler/jobs/{id}`` costs its server a
database query, which at 10 ms would take CPU from the job it waits for. No figure depends
on the poll: a job's end is the one its server recorded."""
WARM_RUNS = 5
FIVE_RUNS = 3
BURST = 20
STOP_SLEEP = 60
TIMEOUT = 180.0

TRIVIAL = ["x = 1"]
FIVE = [
    "import math",
    "xs = [math.sqrt(i) for i in range(10_000)]",
    "total = sum(xs)",
    "print(f'total {total:.1f}')",
    "for i in range(3):\n    print(i)",
]


def notebook(cells: list[str]) -> dict[str, Any]:
    """An nbformat 4 notebook of code cells, with the kernelspec jupyter-scheduler requires."""
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                   "outputs": [], "source": src} for i, src in enumerate(cells)],
    }


def write_notebooks(root: Path) -> Path:
    """trivial.ipynb, five.ipynb and sleeper.ipynb in ``root``; returns the sleeper's PID file."""
    pid_file = root / "sleeper.pid"
    sleeper = [f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
               f"time.sleep({STOP_SLEEP})"]
    for name, cells in (("trivial", TRIVIAL), ("five", FIVE), ("sleeper", sleeper)):
        (root / f"{name}.ipynb").write_text(json.dumps(notebook(cells)))
    return pid_file


def pid_gone(pid: int) -> bool:
    """No such process, or only its zombie (it has exited; its parent has not reaped it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


# --- the peer: jupyter-scheduler in its own venv -------------------------------------------

def peer_python() -> Path:
    """The peer venv's interpreter, with jupyter-scheduler and our ipykernel version in it:
    reused when it has them, else made (or completed) with pip."""
    py = PEER_VENV / "bin" / "python"
    want = {"jupyter-scheduler": PEER_VERSION, "ipykernel": importlib.metadata.version("ipykernel")}
    check = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
             f"{sorted(want)!r}}}))")
    if py.exists():
        got = subprocess.run([str(py), "-c", check], capture_output=True, text=True)
        if got.returncode == 0 and json.loads(got.stdout) == want:
            return py
    else:
        print(f"  making {PEER_VENV} (jupyter-scheduler {PEER_VERSION}, one time) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *(f"{n}=={v}" for n, v in want.items())], check=True)
    return py


class PeerServer:
    """``jupyter server`` with jupyter-scheduler, from the peer venv, in its own session."""

    def __init__(self, root: Path, python: Path) -> None:
        self.root = root
        self.python = python
        self.token = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "peer-server.log"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scheduler/"

    def start(self, timeout: float = 60) -> PeerServer:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTER", "BGTASKS", "VIRTUAL_ENV", "PYTHON"))}
        for name in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
            path = self.root / ".peer" / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        env["PATH"] = f"{self.python.parent}:{env.get('PATH', '')}"
        config = {"ServerApp": {"jpserver_extensions": {"jupyter_scheduler": True,
                                                        "jupyter_server_terminals": False}}}
        (Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json").write_text(json.dumps(config))
        self.port = free_port()
        cmd = [str(self.python), "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.session.get(self.url + "runtime_environments", timeout=5).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"jupyter-scheduler's server did not start; log:\n"
                           f"{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        """SIGTERM the server, then SIGKILL what is left of its process group."""
        if self.proc is None:
            return
        stop_group(self.proc, 20)
        self.session.close()


# --- one driver per side: the same calls, each side's REST API ------------------------------

class Driver:
    """Submit, poll, stop; :meth:`end_time` gives a job's end on the server's wall clock."""

    name = ""
    poll = POLL

    def submit(self, path: str) -> str:
        raise NotImplementedError

    def status(self, job_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def terminal(self, job: dict[str, Any], stopping: bool = False) -> bool:
        raise NotImplementedError

    def ok(self, job: dict[str, Any]) -> bool:
        raise NotImplementedError

    def stop(self, job_id: str) -> None:
        raise NotImplementedError

    def statuses(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def end_time(self, job: dict[str, Any]) -> float:
        """The job's end, in seconds since the epoch, as the server recorded it."""
        raise NotImplementedError

    labels = ("", "")
    """What :meth:`spans`' two parts are, on this side."""

    def spans(self, job: dict[str, Any]) -> tuple[float, float] | None:
        """Created → started and started → ended, in ms, from the server's own timestamps."""
        raise NotImplementedError

    def phases(self, job: dict[str, Any]) -> str:
        """Where a job's time went, from the server's own timestamps."""
        spans = self.spans(job)
        if spans is None:
            return "-"
        return ", ".join(f"{label} {ms:,.0f} ms" for label, ms in zip(self.labels, spans))

    def seen(self, job: dict[str, Any]) -> str | None:
        """What a look at a running job shows worth timing (ours: its progress message)."""
        return None

    def wait(self, job_id: str, stopping: bool = False, timeout: float = TIMEOUT,
             since: float | None = None) -> dict[str, Any]:
        """Poll until terminal; the job's dict gets ``_seen``: each new :meth:`seen` value
        and when it was first seen (ms after ``since``, a wall clock)."""
        deadline = time.monotonic() + timeout
        seen: list[tuple[str, float]] = []
        while True:
            job = self.status(job_id)
            what = self.seen(job)
            if what is not None and (not seen or seen[-1][0] != what):
                seen.append((what, (time.time() - (since or 0)) * 1000))
            if self.terminal(job, stopping):
                job["_seen"] = seen
                return job
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: job {job_id} never ended: {job}")
            time.sleep(self.poll)

    def run(self, path: str) -> tuple[float, dict[str, Any], float]:
        """POST → the end its server recorded: (seconds, the job, the POST's wall clock)."""
        wall = time.time()
        job = self.wait(self.submit(path), since=wall)
        if not self.ok(job):
            raise RuntimeError(f"{self.name}: {path} did not finish: {job}")
        return self.end_time(job) - wall, job, wall


class PeerDriver(Driver):
    name = "jupyter-scheduler"
    poll = PEER_POLL

    def __init__(self, srv: PeerServer) -> None:
        self.srv = srv
        envs = srv.session.get(srv.url + "runtime_environments", timeout=30).json()
        self.env = envs[0]["name"]

    def submit(self, path: str) -> str:
        reply = self.srv.session.post(self.srv.url + "jobs", timeout=120, json={
            "input_uri": path, "runtime_environment_name": self.env, "name": path,
            "output_formats": ["ipynb"]})
        assert reply.ok, reply.text
        return str(reply.json()["job_id"])

    def status(self, job_id: str) -> dict[str, Any]:
        reply = self.srv.session.get(self.srv.url + f"jobs/{job_id}", timeout=60)
        assert reply.ok, reply.text
        job: dict[str, Any] = reply.json()
        return job

    def terminal(self, job: dict[str, Any], stopping: bool = False) -> bool:
        return bool(job["status"] in ("COMPLETED", "FAILED") or (stopping and job["status"] == "STOPPED"))

    def ok(self, job: dict[str, Any]) -> bool:
        return bool(job["status"] == "COMPLETED")

    def stop(self, job_id: str) -> None:
        reply = self.srv.session.patch(self.srv.url + f"jobs/{job_id}", json={"status": "STOPPED"},
                                       timeout=60)
        assert reply.status_code == 204, reply.text

    def statuses(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        reply = self.srv.session.get(self.srv.url + "jobs", params={"max_items": "1000"}, timeout=60)
        assert reply.ok, reply.text
        return {j["job_id"]: j for j in reply.json()["jobs"] if j["job_id"] in ids}

    def end_time(self, job: dict[str, Any]) -> float:
        return float(job["end_time"] or job["update_time"]) / 1000

    labels = ("created→started (a spawned process imports)", "started→completed")

    def spans(self, job: dict[str, Any]) -> tuple[float, float] | None:
        c, s, e = job["create_time"], job.get("start_time"), job.get("end_time")
        if s is None or e is None:
            return None
        return float(s - c), float(e - s)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class OurDriver(Driver):
    name = "bgtasks"

    def __init__(self, srv: ServerProcess) -> None:
        self.srv = srv
        self.session = requests.Session()
        self.session.headers.update(srv.headers)

    def submit(self, path: str) -> str:
        reply = self.session.post(self.srv.api + "tasks", timeout=60,
                                  json={"kind": "notebook", "params": {"path": path}})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def status(self, job_id: str) -> dict[str, Any]:
        reply = self.session.get(self.srv.api + f"tasks/{job_id}", timeout=60)
        assert reply.ok, reply.text
        task: dict[str, Any] = reply.json()
        return task

    def terminal(self, job: dict[str, Any], stopping: bool = False) -> bool:
        return bool(job["state"] in ("finished", "failed", "cancelled"))

    def ok(self, job: dict[str, Any]) -> bool:
        return bool(job["state"] == "finished")

    def stop(self, job_id: str) -> None:
        reply = self.session.post(self.srv.api + f"tasks/{job_id}/cancel", timeout=60)
        assert reply.status_code == 202, reply.text

    def statuses(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        reply = self.session.get(self.srv.api + "tasks", params={"kind": "notebook", "limit": "1000"},
                                 timeout=60)
        assert reply.ok, reply.text
        return {t["id"]: t for t in reply.json()["tasks"] if t["id"] in ids}

    def end_time(self, job: dict[str, Any]) -> float:
        return ts(job["finished_at"])

    def seen(self, job: dict[str, Any]) -> str | None:
        progress = job.get("progress") or {}
        return f"{job['state']}: {progress.get('message') or '-'}"

    labels = ("created→started (to a worker)", "started→finished (in the worker)")

    def spans(self, job: dict[str, Any]) -> tuple[float, float] | None:
        c, s, e = (job.get(k) for k in ("created_at", "started_at", "finished_at"))
        if not (c and s and e):
            return None
        return (ts(s) - ts(c)) * 1000, (ts(e) - ts(s)) * 1000


# --- the measurements, the same for both sides ----------------------------------------------

def paired(drvs: list[Driver], path: str, n: int) -> list[list[float]]:
    """``n`` POST → finished of ``path`` on each side, alternating (both see the same machine,
    which other work may load unevenly over a run); a pause after each job lets a side's
    pool refill, as it would between a user's clicks."""
    runs: list[list[float]] = [[] for _ in drvs]
    for _ in range(n):
        parts = []
        for drv, out in zip(drvs, runs):
            elapsed, job, _ = drv.run(path)
            out.append(elapsed)
            parts.append(f"{drv.name} {elapsed * 1000:,.0f} ms ({drv.phases(job)})")
            time.sleep(1.0)
        print(f"    {path}: " + " · ".join(parts), flush=True)
    return runs


def cold(drv: Driver, on_cold: Callable[[dict[str, Any]], None] | None = None) -> float:
    """The first job after the server is up."""
    elapsed, job, _ = drv.run("trivial.ipynb")
    print(f"  {drv.name}: first job after start {elapsed * 1000:,.0f} ms · {drv.phases(job)}",
          flush=True)
    if job["_seen"]:
        print("    seen after the POST: " + ", ".join(f"{what!r} {ms:,.0f} ms" for what, ms in job["_seen"]),
              flush=True)
    if on_cold is not None:
        on_cold(job)
    return elapsed


def burst(drv: Driver) -> dict[str, float]:
    """20 trivial jobs POSTed at once from 20 threads; jobs/s up to the last job's end."""
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
        ids = set(pool.map(lambda _: drv.submit("trivial.ipynb"), range(BURST)))
    posted = time.time() - start
    deadline = time.monotonic() + TIMEOUT * 2
    while True:
        jobs = drv.statuses(ids)
        if len(jobs) == BURST and all(drv.terminal(j) for j in jobs.values()):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{drv.name}: burst never ended: {jobs}")
        time.sleep(0.1)
    failed = [j for j in jobs.values() if not drv.ok(j)]
    ends = sorted(drv.end_time(j) for j in jobs.values())
    span = ends[-1] - start
    print(f"  {drv.name}: {BURST} at once: all POSTed in {posted * 1000:,.0f} ms, first end "
          f"{ends[0] - start:.2f} s, last {span:.2f} s, {BURST / span:.2f} jobs/s"
          + (f", {len(failed)} not finished: {failed[0]}" if failed else ""), flush=True)
    spans = [sp for sp in map(drv.spans, jobs.values()) if sp is not None]
    if spans:
        print("    per job, p50 / max: " + ", ".join(
            f"{label} {p50(xs):,.0f} / {max(xs):,.0f} ms"
            for label, xs in zip(drv.labels, zip(*spans))), flush=True)
    return {"span": span, "rate": BURST / span, "posted": posted, "failed": len(failed)}


def stop_latency(drv: Driver, pid_file: Path) -> dict[str, Any]:
    """Stop a job whose cell sleeps: stop → terminal, stop → its kernel's PID gone."""
    pid_file.unlink(missing_ok=True)
    job_id = drv.submit("sleeper.ipynb")
    deadline = time.monotonic() + TIMEOUT
    while not (pid_file.exists() and pid_file.read_text().strip()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{drv.name}: the sleeper never started: {drv.status(job_id)}")
        time.sleep(POLL)
    pid = int(pid_file.read_text())
    time.sleep(0.5)  # well inside time.sleep
    t0 = time.perf_counter()
    drv.stop(job_id)
    answered = time.perf_counter() - t0
    terminal_at = gone_at = None
    gone_at_terminal = False
    job: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while (terminal_at is None or gone_at is None) and time.monotonic() < deadline:
        now = time.perf_counter() - t0
        if gone_at is None and pid_gone(pid):
            gone_at = now
        if terminal_at is None:
            job = drv.status(job_id)
            if drv.terminal(job, stopping=True):
                terminal_at = time.perf_counter() - t0
                gone_at_terminal = pid_gone(pid)
        time.sleep(POLL / 2)
    if gone_at is None:
        os.kill(pid, signal.SIGKILL)  # a kernel the side left behind: not ours to keep
    state = job.get("status") or job.get("state")
    print(f"  {drv.name}: stop answered in {answered * 1000:,.0f} ms, terminal ({state}) after "
          f"{(terminal_at or float('nan')) * 1000:,.0f} ms, kernel {pid} gone after "
          + (f"{gone_at * 1000:,.0f} ms" if gone_at is not None else "never (killed by the bench)"),
          flush=True)
    return {"terminal": terminal_at, "gone": gone_at, "state": state,
            "gone_at_terminal": gone_at_terminal}


# --- floors, in this process (the project's venv) ------------------------------------------

def floors(root: Path) -> dict[str, float]:
    """nbclient alone (kernel start, ``x = 1``, shutdown) and a kernel start until ready."""
    import nbformat
    from jupyter_client.manager import start_new_kernel
    from nbclient import NotebookClient

    for name in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "IPYTHONDIR"):
        path = root / "floors" / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(path)
    nb_runs, start_runs = [], []
    for i in range(4):
        nb = nbformat.from_dict(notebook(TRIVIAL))  # type: ignore[no-untyped-call]
        t0 = time.perf_counter()
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(root)}}
                       ).execute(stderr=subprocess.DEVNULL)
        nb_runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60,
                                  stderr=subprocess.DEVNULL)
        start_runs.append(time.perf_counter() - t0)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {"nbclient": p50(nb_runs[1:]), "kernel_start": p50(start_runs[1:])}


def ours_log(srv: ServerProcess, job: dict[str, Any]) -> None:
    text = srv.call("GET", f"tasks/{job['id']}/log").json().get("text", "")
    if text.strip():
        print("    its log: " + " | ".join(text.strip().splitlines()[:6]), flush=True)


def main() -> None:
    python = peer_python()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        peer_root, our_root = base / "peer", base / "ours"
        peer_root.mkdir()
        our_root.mkdir()
        peer_pids, our_pids = write_notebooks(peer_root), write_notebooks(our_root)
        peer = PeerServer(peer_root, python)
        srv = ServerProcess(our_root, our_root / "store" / "tasks.sqlite", config={"workers": 0})
        try:
            t0 = time.perf_counter()
            peer.start()
            print(f"  jupyter-scheduler {PEER_VERSION} server up in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            t0 = time.perf_counter()
            srv.start()
            print(f"  bgtasks server up in {time.perf_counter() - t0:.1f} s", flush=True)
            them, us = PeerDriver(peer), OurDriver(srv)
            cold_them = cold(them)
            cold_us = cold(us, lambda job: ours_log(srv, job))
            time.sleep(1.0)
            paired([them, us], "trivial.ipynb", 1)  # warm-up
            trivial_them, trivial_us = paired([them, us], "trivial.ipynb", WARM_RUNS)
            five_them, five_us = paired([them, us], "five.ipynb", FIVE_RUNS)
            burst_them = burst(them)
            time.sleep(2.0)
            burst_us = burst(us)
            time.sleep(2.0)
            stop_them = stop_latency(them, peer_pids)
            stop_us = stop_latency(us, our_pids)
        finally:
            peer.stop()
            srv.stop()
        floor = floors(base)
    print(f"  floors (project venv, in process): nbclient alone {floor['nbclient'] * 1000:,.0f} ms, "
          f"kernel start until ready {floor['kernel_start'] * 1000:,.0f} ms", flush=True)

    report("notebook job: first after server start (cold)", cold_us * 1000, "ms",
           cold_them * 1000, "jupyter-scheduler's first", "printed", True)
    value, base_ms = p50(trivial_us) * 1000, p50(trivial_them) * 1000
    report(f"trivial notebook POST→finished p50 (of {WARM_RUNS})", value, "ms", base_ms,
           "jupyter-scheduler", "≤ 0.1x", value <= 0.1 * base_ms)
    rate, base_rate = burst_us["rate"], burst_them["rate"]
    report(f"{BURST} trivial notebook jobs at once", rate, "jobs/s", base_rate, "jupyter-scheduler",
           "≥ 5x", rate >= 5 * base_rate and not burst_us["failed"])
    value, base_ms = p50(five_us) * 1000, p50(five_them) * 1000
    report(f"5-cell notebook POST→finished p50 (of {FIVE_RUNS})", value, "ms", base_ms,
           "jupyter-scheduler", "≤ 0.1x", value <= 0.1 * base_ms)
    value = (stop_us["terminal"] or float("inf")) * 1000
    report("stop a running job → terminal", value, "ms",
           (stop_them["terminal"] or float("nan")) * 1000, "jupyter-scheduler",
           "≤ 2 s, kernel gone", value <= 2000 and stop_us["gone_at_terminal"])
    value = (stop_us["gone"] or float("inf")) * 1000
    report("stop a running job → its kernel gone", value, "ms",
           (stop_them["gone"] or float("nan")) * 1000, "jupyter-scheduler", "≤ 2 s", value <= 2000)
    print(f"  spread of the trivial job: ours {statistics.pstdev(trivial_us) * 1000:.0f} ms sd, "
          f"jupyter-scheduler's {statistics.pstdev(trivial_them) * 1000:.0f} ms sd", flush=True)
    done()


if __name__ == "__main__":
    main()
