"""A job's own kernel (none ready in the pool) that it stops wanting while the kernel is
being started: the kernel must not stay. Kernels forked by the fork server are spared by
the worker's sweep (they are the kept fork server's children), so a start that is given
up must end what it started. Run in a process of its own (real pool, real fork server,
real kernels), as a process worker would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, os, sys, time
from bgtasks_ext.kinds import kernelpool

kernelpool.import_client()
kernelpool.make_pool(1, os.getcwd())
me = os.getpid()

def kernels():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            comm = open(f"/proc/{entry}/comm").read().strip()
            parent = open(f"/proc/{stat[1]}/stat").read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if comm == "ipykernel" and stat[0] != "Z" and parent == str(me):
            found.append(int(entry))
    return found

names = sys.argv[1:]
for name in names:
    # a kernel name with nothing in the pool: the job starts its own (and the pool one)
    fut = kernelpool.submit(kernelpool.acquire(name, os.getcwd()))
    kernelpool.discard(fut)  # the job went away at once (cancelled, or failed early)
deadline = time.monotonic() + 60
while len(kernels()) < len(names) and time.monotonic() < deadline:
    time.sleep(0.1)
time.sleep(3)  # a leaked start would be up by now
print("RESULT " + json.dumps({"kernels": len(kernels())}), flush=True)
"""


def test_a_kernel_start_given_up_leaves_no_kernel(tmp_path: Path) -> None:
    # Given kernelspecs this process's pool has no kernel of yet
    names = [f"other{i}" for i in range(4)]
    for name in names:
        spec = tmp_path / "data" / "kernels" / name
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name, "language": "python"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "BGTASKS"))}
    env.update(JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), IPYTHONDIR=str(tmp_path / "ipy"))
    # When a job asks for a kernel of each and gives it up at once
    out = subprocess.run([sys.executable, "-c", SCRIPT, *names], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # Then only the pool's own kernels (one per name) are running, none of the jobs'
    counted = json.loads(out.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert counted == {"kernels": len(names)}, out.stderr[-2000:]
