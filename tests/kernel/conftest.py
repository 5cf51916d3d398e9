"""A real Jupyter server with bgtasks, and real ipykernels started *by that server*.

Why a subprocess server (:mod:`tests.server_process`) and not pytest-jupyter's in-process
app: the kernel clients here are blocking (``jupyter_client.BlockingKernelClient``) and
tests sleep on iopub; an in-process server would need its event loop turning meanwhile.
A subprocess server also gives kernels exactly what production gives them: the
``BGTASKS_URL``/``BGTASKS_TOKEN`` environment the extension sets before they start.

Fixtures
--------
``bg_server`` (session)
    A started :class:`~tests.server_process.ServerProcess` (``.url``, ``.api``,
    ``.headers``, ``.root``; kernel connection files are in ``.root/jupyter_runtime_dir``). Shared by every kernel test: one start-up (~2 s).
``kernel`` (function)
    A :class:`Kernel` started by ``bg_server`` through ``POST api/kernels``; shut down
    after the test.
``plain_kernel`` (function)
    A :class:`Kernel` started by a bare ``jupyter_client.KernelManager`` with no
    ``BGTASKS_*`` in its environment: the "no server" case.
``rest`` (function)
    ``rest(method, path, **requests_kwargs) -> requests.Response`` against the bgtasks
    REST API of ``bg_server`` (``path`` relative to ``.../bgtasks/api/``).

The :class:`Kernel` helper
--------------------------
``kernel.execute(code, timeout=30, cell_id=None) -> ExecResult``
    Runs a cell and reads iopub until the kernel is idle again for that cell. With
    ``cell_id``, the request's metadata carries ``cellId``, as JupyterLab sends it.
    ``ExecResult.outputs`` are the iopub contents of stream/display_data/
    execute_result/error messages, ``.error`` the error content (or None),
    ``.comm_opens``/``.comm_msgs`` the comm contents seen meanwhile (any parent: widget
    updates sent from background threads are caught too). ``.text`` joins stdout and
    text/plain outputs. ``kernel.execute_ok(code)`` asserts there was no error.
``kernel.wait_for(predicate, timeout) -> bool``
    Keeps reading iopub (after a cell finished, or while another runs: use
    ``execute_async``) until ``predicate()`` is true; every message read updates
    ``kernel.messages`` and ``kernel.widgets``.
``kernel.widgets``
    ``{comm_id: state}``: each widget's state from its comm_open, merged with every
    ``update`` comm_msg since. ``kernel.updates`` is the list of ``(time, comm_id, state
    delta)`` for every update (timestamps from ``time.monotonic()`` when read).
``kernel.widgets_of(model_name)``
    The comm ids whose ``_model_name`` is e.g. ``"FloatProgressModel"``.
``kernel.click(comm_id)``
    A Button click as the frontend sends it: a ``comm_msg`` on the shell channel with
    ``{"method": "custom", "content": {"event": "click"}}``. Clicks wait while a cell
    runs (shell messages are handled in order).
``kernel.execute_async(code) -> msg_id`` / ``kernel.wait_idle(msg_id, timeout)``
    Start a cell without waiting, then read iopub (collecting widget updates) until it
    ends: how a test sees updates arrive *during* another cell.
``kernel.restart()``
    ``POST api/kernels/{id}/restart`` on the server, then reconnects the client.
``kernel.id``
    The kernel id on the server (what tasks carry as ``origin.kernel_id``).
"""

from __future__ import annotations

import json
import os
import queue
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_client import BlockingKernelClient, KernelManager

from tests.server_process import ServerProcess

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error", "update_display_data"}


@dataclass
class ExecResult:
    """What one cell produced on iopub."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    comm_opens: list[dict[str, Any]] = field(default_factory=list)
    comm_msgs: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        parts = []
        for out in self.outputs:
            if out.get("name") in ("stdout", "stderr"):
                parts.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"] + "\n")
        return "".join(parts)

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        text = f"{self.error['ename']}: {self.error['evalue']}\n" + "\n".join(self.error["traceback"])
        return ANSI.sub("", text)


class Kernel:
    """A blocking client on one kernel, recording every iopub message it reads."""

    def __init__(self, client: BlockingKernelClient, kernel_id: str = "",
                 restart: Callable[[], None] | None = None) -> None:
        self.client = client
        self.id = kernel_id
        self._restart = restart
        self.messages: list[dict[str, Any]] = []
        self.widgets: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[float, str, dict[str, Any]]] = []
        self._current: dict[str, ExecResult] = {}

    # -- reading iopub ---------------------------------------------------------------
    def _read_one(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg: dict[str, Any] = self.client.get_iopub_msg(timeout=max(timeout, 0.001))
        except queue.Empty:
            return None
        self.messages.append(msg)
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "comm_open":
            state = content.get("data", {}).get("state", {})
            self.widgets[content["comm_id"]] = dict(state)
        elif kind == "comm_msg":
            data = content.get("data", {})
            if data.get("method") in ("update", "echo_update"):
                self.widgets.setdefault(content["comm_id"], {}).update(data.get("state", {}))
                self.updates.append((time.monotonic(), content["comm_id"], dict(data.get("state", {}))))
        # Comm traffic goes to every running cell's result, whatever its parent.
        parent = msg.get("parent_header", {}).get("msg_id")
        for msg_id, result in self._current.items():
            if kind == "comm_open":
                result.comm_opens.append(content)
            elif kind == "comm_msg":
                result.comm_msgs.append(content)
            elif msg_id == parent and kind in OUTPUT_TYPES:
                result.outputs.append(content)
                if kind == "error":
                    result.error = content
        return msg

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> bool:
        """Read iopub until ``predicate()`` holds; False if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read_one(min(left, 0.2))
        return True

    def drain(self, seconds: float) -> None:
        """Read whatever iopub brings for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read_one(min(left, 0.2))

    # -- running cells ---------------------------------------------------------------
    def execute_async(self, code: str, cell_id: str | None = None) -> str:
        """Send an execute_request; with ``cell_id``, its metadata carries ``cellId`` as
        JupyterLab's requests do (jupyter_client's ``execute`` sends no metadata)."""
        if cell_id is None:
            msg_id: str = self.client.execute(code, allow_stdin=False)
        else:
            content = {"code": code, "silent": False, "store_history": True,
                       "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
            msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
            self.client.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        self._current[msg_id] = ExecResult()
        return msg_id

    def wait_idle(self, msg_id: str, timeout: float = 30) -> ExecResult:
        result = self._current[msg_id]

        def idle() -> bool:
            return any(m["header"]["msg_type"] == "status"
                       and m["content"]["execution_state"] == "idle"
                       and m.get("parent_header", {}).get("msg_id") == msg_id
                       for m in self.messages[-50:])

        try:
            if not self.wait_for(idle, timeout):
                raise TimeoutError(f"cell did not finish in {timeout} s; outputs: {result.outputs}")
        finally:
            del self._current[msg_id]
        # The reply to this request (a reply to an earlier one that timed out may come first).
        deadline = time.monotonic() + 5
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = self.client.get_shell_msg(timeout=left)
            except queue.Empty:
                break
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                result.reply = reply["content"]
                break
        return result

    def execute(self, code: str, timeout: float = 30, cell_id: str | None = None) -> ExecResult:
        return self.wait_idle(self.execute_async(code, cell_id), timeout)

    def execute_ok(self, code: str, timeout: float = 30, cell_id: str | None = None) -> ExecResult:
        result = self.execute(code, timeout, cell_id)
        assert result.error is None, result.error_text
        assert result.reply is None or result.reply.get("status") == "ok", result.reply
        return result

    def eval(self, expr: str, timeout: float = 30) -> Any:
        """The value of ``expr`` in the kernel, through JSON (it must be JSON-able)."""
        result = self.execute_ok(f"import json as _j; print(_j.dumps({expr}))", timeout)
        lines = [o["text"] for o in result.outputs if o.get("name") == "stdout"]
        return json.loads("".join(lines).strip().splitlines()[-1])

    # -- widgets ---------------------------------------------------------------------
    def widgets_of(self, model_name: str) -> list[str]:
        return [cid for cid, st in self.widgets.items() if st.get("_model_name") == model_name]

    def click(self, comm_id: str) -> None:
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        msg = self.client.session.msg("comm_msg", content)
        self.client.shell_channel.send(msg)

    # -- life ------------------------------------------------------------------------
    def restart(self) -> None:
        assert self._restart is not None, "this kernel cannot be restarted through a server"
        self._restart()

    def close(self) -> None:
        self.client.stop_channels()


@pytest.fixture(scope="session")
def bg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("bgserver")
    # Thread executor idle is cheap; one process worker keeps the 2-core machine usable.
    server = ServerProcess(root, root / "store" / "tasks.sqlite", config={"cancel_grace": 1.0})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rest(bg_server: ServerProcess) -> Callable[..., requests.Response]:
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.request(method, bg_server.api + path, headers=bg_server.headers, **kwargs)
    return call


def _connect(server: ServerProcess, kernel_id: str) -> BlockingKernelClient:
    path = server.root / "jupyter_runtime_dir" / f"kernel-{kernel_id}.json"
    deadline = time.monotonic() + 20
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no connection file {path}")
        time.sleep(0.05)
    for attempt in range(3):
        client = BlockingKernelClient(connection_file=str(path))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            return client
        except RuntimeError:
            # "Kernel died before replying": a client without a manager judges by
            # heartbeats, which a loaded 2-core machine can delay past their 1 s; the
            # kernel is usually fine, so connect again.
            client.stop_channels()
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def start_server_kernel(server: ServerProcess) -> Kernel:
    """A kernel started by ``server`` (so it has BGTASKS_URL/TOKEN), with a client on it."""
    resp = requests.post(server.url + "api/kernels", headers=server.headers,
                         json={"name": "python3"}, timeout=60)
    resp.raise_for_status()
    kernel_id = resp.json()["id"]
    kernel = Kernel(_connect(server, kernel_id), kernel_id)

    def restart() -> None:
        kernel.client.stop_channels()
        r = requests.post(server.url + f"api/kernels/{kernel_id}/restart",
                          headers=server.headers, timeout=60)
        r.raise_for_status()
        kernel.client = _connect(server, kernel_id)
        kernel.widgets.clear()

    kernel._restart = restart
    return kernel


def stop_server_kernel(server: ServerProcess, kernel: Kernel) -> None:
    kernel.close()
    requests.delete(server.url + f"api/kernels/{kernel.id}", headers=server.headers, timeout=30)


@pytest.fixture
def kernel(bg_server: ServerProcess) -> Iterator[Kernel]:
    k = start_server_kernel(bg_server)
    try:
        yield k
    finally:
        stop_server_kernel(bg_server, k)


@pytest.fixture
def plain_kernel(tmp_path: Path) -> Iterator[Kernel]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BGTASKS")}
    km = KernelManager(kernel_name="python3")
    km.connection_file = str(tmp_path / "kernel-plain.json")
    km.start_kernel(env=env, cwd=str(tmp_path))
    client = km.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    k = Kernel(client)
    try:
        yield k
    finally:
        k.close()
        km.shutdown_kernel(now=True)


def widget_text(kernel: Kernel) -> str:
    """The text of every HTML and Label widget the kernel shows (titles, messages, notes)."""
    return "\n".join(str(s.get("value", "")) for s in kernel.widgets.values()
                     if s.get("_model_name") in ("HTMLModel", "LabelModel"))


def wait_eval(kernel: Kernel, expr: str, expected: Any, timeout: float = 30) -> Any:
    """Evaluate ``expr`` in the kernel until it equals ``expected`` (or time runs out);
    the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = kernel.eval(expr)
        if value == expected:
            return value
        time.sleep(0.2)
    return value
