"""The server never loads user data, and its kernel secret reaches kernels only.

Probed from outside, against a real ``jupyter server`` subprocess: a payload whose
unpickling runs a command, sent to the executor that runs in the server process; the
kernel secret looked for where it must not be (the server's environment as terminals
and workers inherit it, a worker's environment).
"""

from __future__ import annotations

import base64
import os
import pickle
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.server_process import ServerProcess


class Trap:
    """Unpickling this runs a shell command: what a hostile payload does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A server whose default executor is the one in its own process
    root = tmp_path_factory.mktemp("untrusted")
    with ServerProcess(root, root / "tasks.sqlite", config={"default_executor": "thread"}) as srv:
        yield srv


@pytest.mark.parametrize("kind", ["code", "count"])
def test_a_payload_for_the_server_process_is_refused_unloaded(server: ServerProcess, tmp_path: Path,
                                                              kind: str) -> None:
    # Given a payload whose unpickling runs a command
    marker = tmp_path / f"ran-{kind}"
    payload = base64.b64encode(pickle.dumps(Trap(marker))).decode()
    # When it is sent for the thread executor (the server's own process)
    reply = server.call("POST", "tasks", json={"kind": kind, "executor": "thread",
                                                  "payload": payload})
    # Then it is refused, naming the executor, and nothing was loaded or stored
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == "executor"
    assert "never loads user data" in reply.json()["message"]
    time.sleep(0.5)
    assert not marker.exists()
    assert server.call("GET", "tasks").json()["tasks"] == []


def test_a_payload_without_an_executor_goes_to_a_worker(server: ServerProcess, tmp_path: Path) -> None:
    # Given the same hostile payload, and a server whose default executor is "thread"
    marker = tmp_path / "ran-in-worker"
    payload = base64.b64encode(pickle.dumps(Trap(marker))).decode()
    # When a code task names no executor
    reply = server.call("POST", "tasks", json={"kind": "code", "payload": payload})
    # Then it runs in a worker process (which loads it; there it is the user's own code)
    assert reply.status_code == 201, reply.text
    task = server.wait_end(reply.json()["id"])
    assert task["executor"] == "process"
    assert marker.exists()  # it ran, in a worker: the server process never loaded it


def _terminal_output(srv: ServerProcess, command: str, timeout: float = 30) -> str:
    """Run ``command`` in a new terminal of the server, as a user's shell would."""
    import json

    from websocket import create_connection  # websocket-client, a jupyter_server dependency

    name = requests.post(srv.url + "api/terminals", headers=srv.headers, timeout=10).json()["name"]
    ws = create_connection(f"ws://127.0.0.1:{srv.port}/terminals/websocket/{name}?token={srv.token}",
                           timeout=timeout)
    try:
        # The shell echoes the command line: the end marker is computed, so only the
        # command's own output holds it.
        ws.send(json.dumps(["stdin", f"{command}; echo END-OF-$((40+2))\r"]))
        out = ""
        deadline = time.monotonic() + timeout
        while "END-OF-42" not in out:
            assert time.monotonic() < deadline, out
            kind, *rest = json.loads(ws.recv())
            if kind == "stdout":
                out += rest[0]
        return out
    finally:
        ws.close()
        requests.delete(srv.url + f"api/terminals/{name}", headers=srv.headers, timeout=10)


def test_the_kernel_secret_is_not_in_a_terminal(tmp_path: Path) -> None:
    # Given a server with terminals, whose kernels get the secret
    with ServerProcess(tmp_path, tmp_path / "tasks.sqlite", terminals=True) as srv:
        # When a user prints the environment in a terminal of that server
        out = _terminal_output(srv, "printenv BGTASKS_TOKEN BGTASKS_URL; echo rc=$?")
    # Then neither the secret nor the URL is there
    assert "rc=1" in out, out


def _call_task(srv: ServerProcess, fn: Any, python: str | None = None) -> dict[str, Any]:
    """Run ``fn()`` as a code task in a process worker (a pickled call, as submit() sends)."""
    import cloudpickle

    from bgtasks_ext.kinds.code import CodeJob

    payload = base64.b64encode(cloudpickle.dumps(CodeJob(mode="call", fn=fn))).decode()
    body = {"kind": "code", "executor": "process", "payload": payload, "python": python}
    reply = srv.call("POST", "tasks", json=body)
    assert reply.status_code == 201, reply.text
    return srv.wait_end(reply.json()["id"])


def _other_python(where: Path) -> str:
    """Another interpreter, as a kernel in another virtualenv has: a new venv that
    reaches this one's packages (and this checkout) through a .pth file."""
    import subprocess
    import sys

    venv = where / "other-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
    reach = [p for p in sys.path if p.endswith("site-packages")] + [str(Path(__file__).parents[2])]
    Path(purelib, "reach-main-venv.pth").write_text("\n".join(reach) + "\n")
    return str(python)


def test_the_kernel_secret_is_not_in_a_worker(server: ServerProcess, tmp_path: Path) -> None:
    import cloudpickle

    # Given a task for another interpreter (its worker pool starts after the server is up)
    python = _other_python(tmp_path)
    # When it reads its worker's environment
    task = _call_task(server, lambda: {k: v for k, v in os.environ.items()
                                       if k in ("BGTASKS_TOKEN", "BGTASKS_URL")},
                      python=python)
    # Then the worker's environment has nothing of the secret
    assert task["state"] == "finished", task
    result = requests.get(server.api + f"tasks/{task['id']}/result", timeout=10,
                          headers={**server.headers, "Accept": "application/vnd.bgtasks.pickle"})
    assert cloudpickle.loads(result.content).value == {}
