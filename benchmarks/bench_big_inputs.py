"""A ``%%bgtask`` cell whose input is 300 MB: how long the notebook is held.

Run: ``python benchmarks/bench_big_inputs.py``. A real server subprocess, a real kernel
it started, a 300 MB variable (incompressible bytes) read by the cell. Figures, in one
run and one kernel (issue #10, item 5):

- control back: from sending the ``%%bgtask`` cell to the kernel going idle again.
  Baseline: ``cloudpickle.dumps`` of the same inputs, timed inside the kernel (what
  freezing the inputs costs at least). Target: ≤ 2× the baseline.
- output landed: from sending the cell to the task's output landing in the namespace
  (the bytes sent over loopback, stored, handed to a worker, loaded, run, and the
  result brought back). Reported beside the same baseline, no target.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import done, p50, report  # noqa: E402
from bench_magic import _idle_time, _stamp  # noqa: E402  (iopub read times)

from tests.kernel.conftest import Kernel, start_server_kernel, stop_server_kernel  # noqa: E402
from tests.server_process import ServerProcess  # noqa: E402

SIZE_MB = 300
RUNS = 3


def _idle_after(kernel: Kernel, msg_id: str, sent: float) -> float:
    kernel.wait_idle(msg_id, 120)
    return (_idle_time(kernel, msg_id) - sent) * 1000


def run(kernel: Kernel, i: int) -> tuple[float, float, float]:
    """(dumps ms in the kernel, control back ms, output landed ms) for one launch."""
    dumps_ms = float(kernel.eval(
        "(lambda t0: (cloudpickle.dumps({'blob': blob}), (time.perf_counter() - t0) * 1000)[1])"
        "(time.perf_counter())"))
    kernel.execute_ok(f"n{i} = None")
    sent = time.monotonic()
    msg_id = kernel.execute_async(f"%%bgtask --no-widget big {i}\nn{i} = len(blob)")
    back_ms = _idle_after(kernel, msg_id, sent)
    kernel.execute_ok(f"assert _.result(300) is not None or True\nwhile n{i} is None: time.sleep(0.005)",
                      timeout=300)
    landed_ms = (time.monotonic() - sent) * 1000
    assert kernel.eval(f"n{i}") == SIZE_MB << 20
    return dumps_ms, back_ms, landed_ms


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ServerProcess(root, root / "tasks.sqlite", config={"workers": 1}) as server:
            kernel = start_server_kernel(server)
            try:
                _stamp(kernel)
                kernel.execute_ok(f"%load_ext bgtasks_ext\nimport os, time, cloudpickle\n"
                                  f"blob = os.urandom({SIZE_MB} << 20)", timeout=120)
                runs = [run(kernel, i) for i in range(RUNS)]
            finally:
                stop_server_kernel(server, kernel)
    dumps, back, landed = (p50(r[k] for r in runs) for k in range(3))
    report(f"%%bgtask, {SIZE_MB} MB input: send -> control back p50", back, "ms", dumps,
           "cloudpickle.dumps in the kernel", "<= 2x dumps", back <= 2 * dumps)
    report(f"%%bgtask, {SIZE_MB} MB input: send -> output landed p50", landed, "ms", dumps,
           "cloudpickle.dumps in the kernel", "(reported)", True)
    done()


if __name__ == "__main__":
    main()
