"""Browser tests: a real JupyterLab, started as a subprocess, driven by Playwright in Chromium.

Fixtures for every module in this folder:

- ``lab_server``: one ``jupyter lab`` for the whole folder, on loopback, with a known token,
  temp config/data/runtime/settings/workspace dirs and a temp ``root_dir`` for notebooks.
  Its log is written to ``tests/artifacts/lab-server.log``. It loads the extra kinds of
  ``kinds/`` (``boom``: fails with a traceback), see ``TEST_KINDS``.
- ``run_jupyter(base, module, app_class, log_name, home)``: the same for any Jupyter app
  (``test_notebook7.py`` runs ``python -m notebook`` with it, for its own module).
- ``browser``: one headless Debian Chromium for the whole folder.
- ``page``: a fresh browser context and page per test; on failure a screenshot lands in
  ``tests/artifacts/``. ``page_errors`` collects the page's uncaught JS errors.
- ``lab_page``: ``page`` with JupyterLab opened and its application started and restored
  (``window.jupyterapp`` is exposed to run commands).
- ``screenshot``: ``screenshot(page, "name")`` saves ``tests/artifacts/name.png``.

Why a subprocess and folder (package) scope: Playwright's sync API marks its own asyncio loop
as running on the main thread between calls, which clashes with pytest-jupyter's autouse loop
fixtures. So the server here is not pytest-jupyter's in-process app, those autouse fixtures are
overridden with no-ops below, and Playwright is stopped before tests of other folders run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

HERE = Path(__file__).resolve().parent
# Extra kinds for the servers (``boom``: fails with a traceback); on their PYTHONPATH.
TEST_KINDS_DIR = HERE / "kinds"
TEST_KINDS = ["bgtasks_browser_kinds:boom"]
ARTIFACTS = HERE.parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Without the networking flags Chromium keeps trying to reach Google, which this
# machine's closed network refuses (see shared/TOOLCHAIN.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_TIMEOUT = 90.0
PAGE_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class LabServer:
    """A running ``jupyter lab`` subprocess."""

    url: str
    """Base URL, ending with ``/``."""
    token: str
    root_dir: Path
    """The server's ``root_dir``: put notebooks here."""
    log_path: Path
    process: subprocess.Popen[bytes]

    def lab_url(self, path: str = "lab") -> str:
        """URL of a page under the base URL, with the token to log in."""
        return f"{self.url}{path}?token={self.token}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call a REST route under the base URL with the token; return the decoded JSON (or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# -- keep pytest-jupyter's autouse event-loop fixtures away from Playwright -------------------


@pytest.fixture
def jp_asyncio_loop() -> Iterator[None]:
    """No-op override of pytest-jupyter's autouse loop fixture (see the module docstring)."""
    yield None


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    """No-op override of pytest-jupyter's autouse server clean-up (no in-process server here)."""
    yield None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# -- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(server: LabServer, home: str = "lab") -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {server.process.returncode} before it was ready:\n"
                + server.log()
            )
        try:
            server.api("GET", "api/status")
            with urllib.request.urlopen(server.lab_url(home), timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {SERVER_START_TIMEOUT} s:\n" + server.log())


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (the server and its kernels)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    try:  # kernels left behind in the group
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def run_jupyter(
    base: Path, module: str, app_class: str, log_name: str, home: str = "lab"
) -> Iterator[LabServer]:
    """Run ``python -m <module>`` (``jupyterlab`` or ``notebook``) on loopback with a known
    token, temp config/data/runtime/settings/workspace dirs and a temp ``root_dir``; its
    log goes to ``tests/artifacts/<log_name>``. Ready once ``<home>`` answers 200."""
    root_dir = base / "root"
    settings_dir = base / "settings"
    notification_settings = settings_dir / "@jupyterlab" / "apputils-extension"
    for folder in (root_dir, notification_settings, base / "workspaces"):
        folder.mkdir(parents=True)
    # Otherwise a "fetch news?" toast covers part of the page.
    (notification_settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"})
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / log_name
    port = _free_port()
    token = os.urandom(16).hex()

    # User-level Jupyter dirs are temp dirs. The extension is still found: it is installed
    # in sys.prefix (share/jupyter/labextensions, etc/jupyter/jupyter_server_config.d),
    # which Jupyter searches whatever JUPYTER_DATA_DIR / JUPYTER_CONFIG_DIR say.
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(TEST_KINDS_DIR), os.environ.get("PYTHONPATH")) if p
        ),
    }
    cmd = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        f"--{app_class}.user_settings_dir={settings_dir}",
        f"--{app_class}.workspaces_dir={base / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--{app_class}.expose_app_in_browser=True",
        *(f"--BgTasks.extra_kinds={ref}" for ref in TEST_KINDS),
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")

    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            cmd,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(
        url=f"http://127.0.0.1:{port}/",
        token=token,
        root_dir=root_dir,
        log_path=log_path,
        process=process,
    )
    try:
        _wait_until_ready(server, home)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="package")
def nb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """One Notebook 7 server (``python -m notebook``) for every module that needs it."""
    with run_jupyter(
        tmp_path_factory.mktemp("nb7"), "notebook", "JupyterNotebookApp",
        "notebook-server.log", home="tree",
    ) as server:
        yield server


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with run_jupyter(
        tmp_path_factory.mktemp("lab"), "jupyterlab", "LabApp", "lab-server.log"
    ) as server:
        yield server


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught JavaScript errors of ``page``, in order."""
    return []


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    def take(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            screenshot(page, f"FAILED-{request.node.name}")
    finally:
        context.close()


@pytest.fixture
def lab_page(page: Page, lab_server: LabServer) -> Page:
    """``page`` showing JupyterLab, its application started, on a fresh layout: ``reset``
    drops the workspace an earlier test left (its open notebooks would be restored)."""
    page.goto(lab_server.lab_url() + "&reset")
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate(
        "async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }"
    )
    # The splash screen fades out after `restored`; screenshots taken before show it.
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    return page
