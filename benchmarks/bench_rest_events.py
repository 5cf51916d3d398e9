"""REST + events websocket against a real ``jupyter server`` subprocess.

Run: ``python benchmarks/bench_rest_events.py``. Two figures (SPEC §8), each beside a
baseline measured in the same run:

- submit → ``finished`` event of a no-op process task, p50 of 200 sequential tasks
  (POST, then read the websocket until the task's ``finished`` message), beside spawning
  ``python -c pass`` with the same interpreter. Target: ≤ 1/4 of a spawn.
- 500 no-op tasks through REST, 32 POSTs in flight, first submit to last ``finished``
  event. Target: ≥ 500 tasks/s. Beside it: 500 ``GET api/status`` at the same
  concurrency on the same server, the ceiling any route of this server can reach.

The kind is a true no-op defined here; the server (and its workers, which get its
``sys.path``) import this file as the module ``bench_rest_events``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOKEN = "bench-rest-events-token"
SEQUENTIAL = 200
BURST = 500
IN_FLIGHT = 32


def noop() -> None:
    """The task: nothing, so the figure is all overhead."""
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_p50(n: int = 20) -> float:
    """``python -c pass`` with this interpreter, in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def start_server(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for var, sub in (("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTER_CONFIG_DIR", "config"), ("IPYTHONDIR", "ipython")):
        env[var] = str(tmp / sub)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    args = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={tmp}", f"--BgTasks.store_path={tmp / 'store' / 'tasks.sqlite'}",
        "--BgTasks.extra_kinds=bench_rest_events:noop",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    log = open(tmp / "server.log", "wb")
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class Conn:
    """One keep-alive HTTP/1.1 connection, as a browser or ``requests.Session`` keeps.
    (tornado's simple client opens a connection per request: ~0.5 ms of client cost that
    no real client pays.) Enough HTTP for this server: Content-Length bodies only."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"{method} /{path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: token {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        status = int((await self.reader.readline()).split()[1])
        size = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                size = int(value)
        return status, await self.reader.readexactly(size)

    async def json(self, method: str, path: str, body: bytes = b"", want: int = 200) -> Any:
        status, data = await self.request(method, path, body)
        if status != want:
            raise RuntimeError(f"{method} {path}: {status} {data[:200]!r}")
        return json.loads(data)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Bench:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conns = [Conn(port) for _ in range(IN_FLIGHT)]
        self.ws: Any = None
        self.finished: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.count_to: tuple[int, asyncio.Future[float]] | None = None

    async def submit(self, conn: Conn) -> str:
        return str((await conn.json("POST", "bgtasks/api/tasks", b'{"kind": "noop"}', 201))["id"])

    async def connect(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for the server (the websocket answers once the engine runs), subscribe."""
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = f"ws://127.0.0.1:{self.port}/bgtasks/api/events"
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the server exited; see server.log")
            try:
                self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}))
                break
            except Exception as exc:  # not up yet
                last = exc
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"server not ready: {last}")
        first = json.loads(await self.ws.read_message())
        assert first["type"] == "snapshot"
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Read events; stamp each task's ``finished`` message as it arrives."""
        while (text := await self.ws.read_message()) is not None:
            now = time.perf_counter()
            data = json.loads(text)
            for m in data if isinstance(data, list) else [data]:
                if m["change"] != "state" or m["task"]["state"] != "finished":
                    continue
                tid = m["task"]["id"]
                self.finished[tid] = now
                waiter = self.waiters.pop(tid, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
                if self.count_to is not None and len(self.finished) >= self.count_to[0]:
                    if not self.count_to[1].done():
                        self.count_to[1].set_result(now)

    async def latency(self, n: int) -> list[float]:
        """Sequential submit → finished event, in ms (the event may beat the reply)."""
        out = []
        loop = asyncio.get_running_loop()
        for _ in range(n):
            t0 = time.perf_counter()
            tid = await self.submit(self.conns[0])
            if tid in self.finished:
                end = self.finished[tid]
            else:
                fut: asyncio.Future[float] = loop.create_future()
                self.waiters[tid] = fut
                end = await asyncio.wait_for(fut, 30)
            out.append((end - t0) * 1000)
        return out

    async def _spread(self, n: int, call: Any) -> list[Any]:
        """``n`` calls over IN_FLIGHT connections, each sending its next request as soon
        as its reply is in."""
        left = iter(range(n))

        async def lane(conn: Conn) -> list[Any]:
            return [await call(conn) for _ in left]

        lanes = await asyncio.gather(*(lane(c) for c in self.conns))
        return [x for lane_out in lanes for x in lane_out]

    async def burst(self, n: int) -> float:
        """n tasks, IN_FLIGHT POSTs at a time: tasks/s from first POST to last finished."""
        self.finished.clear()
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.count_to = (n, done)
        t0 = time.perf_counter()
        ids = await self._spread(n, self.submit)
        end = await asyncio.wait_for(done, 120)
        self.count_to = None
        assert set(ids) <= set(self.finished), "a finished event is missing"
        return n / (end - t0)

    async def status_rate(self, n: int) -> float:
        t0 = time.perf_counter()
        await self._spread(n, lambda conn: conn.json("GET", "api/status"))
        return n / (time.perf_counter() - t0)

    def close(self) -> None:
        self.ws.close()
        for conn in self.conns:
            conn.close()


async def measure(port: int, proc: subprocess.Popen[bytes]) -> tuple[list[float], float, float]:
    bench = Bench(port)
    await bench.connect(proc)
    await bench.latency(20)  # warm: pool workers, imports, SQLite pages
    lat = await bench.latency(SEQUENTIAL)
    await bench.status_rate(100)
    status = await bench.status_rate(BURST)
    rate = await bench.burst(BURST)
    bench.close()
    return lat, rate, status


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _common import done, p50, report

    spawn = spawn_p50()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_server(Path(tmp), port)
        try:
            lat, rate, status = asyncio.run(measure(port, proc))
        finally:
            stop_server(proc)
    lat_p50 = p50(lat)
    report("submit → finished event, no-op process task p50", lat_p50, "ms", spawn,
           "python -c pass", "≤ 1/4 of a spawn", lat_p50 <= spawn / 4)
    report(f"{BURST} no-op tasks via REST ({IN_FLIGHT} in flight)", rate, "tasks/s", status,
           "GET api/status, same concurrency", "≥ 500/s", rate >= 500)
    print(f"  latency p90 {sorted(lat)[int(len(lat) * 0.9)]:.2f} ms, max {max(lat):.2f} ms", flush=True)
    done()


if __name__ == "__main__":
    main()
