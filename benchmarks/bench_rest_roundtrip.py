"""Round trip of ``POST bgtasks/api/tasks`` beside ``GET api/status`` on the same server.

A real ``jupyter server`` subprocess, one keep-alive HTTP client, sequential requests,
the two kinds interleaved so both see the same machine. The task is next to nothing
(``sleep`` 0 s on the thread executor): the figure is the cost of the REST layer and
of making the task durable before the 201, not of running it.

Target: p50 of the create within 2x of the p50 of Jupyter's own cheapest API call
(jupyter-scheduler's create is 21x on this machine, TOOLCHAIN.md).
"""

from __future__ import annotations

import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import done, p50, report  # noqa: E402

from tests.server_process import API, ServerProcess  # noqa: E402

N = 500
WARMUP = 100
BODY = {"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"}


def measure(srv: ServerProcess) -> tuple[list[float], list[float]]:
    # http.client rather than requests: a thin client keeps its own cost (~0.4 ms per
    # call with requests) from diluting the ratio.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port)
    body = json.dumps(BODY).encode()
    json_headers = {**srv.headers, "Content-Type": "application/json"}

    def status() -> None:
        conn.request("GET", "/api/status", headers=srv.headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200

    def create() -> None:
        conn.request("POST", "/" + API + "tasks", body=body, headers=json_headers)
        resp = conn.getresponse()
        text = resp.read()
        assert resp.status == 201, text

    for _ in range(WARMUP):
        status()
        create()
    gets: list[float] = []
    posts: list[float] = []
    for _ in range(N):
        for fn, out in ((status, gets), (create, posts)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    conn.close()
    return gets, posts


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ServerProcess(root, root / "store" / "tasks.sqlite") as srv:
            gets, posts = measure(srv)
    base, value = p50(gets) * 1000, p50(posts) * 1000
    print(f"GET api/status p50 {base:.3f} ms · POST tasks p50 {value:.3f} ms · "
          f"ratio {value / base:.2f}x · p90 POST {sorted(posts)[int(N * 0.9)] * 1000:.3f} ms",
          flush=True)
    report("REST create round trip p50 (keep-alive)", value, "ms", base, "GET api/status p50",
           "≤ 2x GET api/status", value <= 2 * base)
    done()


if __name__ == "__main__":
    main()
