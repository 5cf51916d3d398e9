"""A real JupyterLab loads jupyter-bgtasks: the server extension and the frontend plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Page

if TYPE_CHECKING:
    from .conftest import LabServer

PLUGIN_ID = "jupyter-bgtasks:plugin"


def test_lab_loads_with_the_bgtasks_plugin_activated(
    lab_page: Page,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a JupyterLab server with jupyter-bgtasks installed, opened in Chromium
    page = lab_page

    # When the application has started and restored its layout
    page_config = json.loads(page.locator("#jupyter-config-data").text_content() or "{}")
    has_plugin = page.evaluate("id => window.jupyterapp.hasPlugin(id)", PLUGIN_ID)
    activated = page.evaluate("id => window.jupyterapp.isPluginActivated(id)", PLUGIN_ID)
    shot = screenshot(page, "lab_loads")

    # Then the server offered our federated extension, and its plugin is registered and active
    federated = [ext["name"] for ext in page_config.get("federated_extensions", [])]
    assert "jupyter-bgtasks" in federated
    assert has_plugin, f"{PLUGIN_ID} not registered; plugins: {federated}"
    assert activated, f"{PLUGIN_ID} registered but not activated"
    assert page.locator("#jp-main-dock-panel").is_visible()
    assert page_errors == []
    assert shot.stat().st_size > 0


def test_the_lab_server_loads_the_bgtasks_server_extension(lab_server: LabServer) -> None:
    # Given the JupyterLab server the browser tests use (started by `jupyter lab`, as a user would)
    # When it has started
    log = lab_server.log()

    # Then it linked and loaded bgtasks_ext from the installed config, without errors
    assert "bgtasks_ext | extension was successfully linked." in log, log
    assert "bgtasks_ext | extension was successfully loaded." in log, log
    assert "bgtasks_ext | error" not in log, log
