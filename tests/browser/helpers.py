"""Helpers shared by the browser tests: open the panel, find rows, wait for states."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from .conftest import LabServer

API = "bgtasks/api/"
PANEL = "#jp-bgtasks-panel"


def open_panel(page: Page) -> Locator:
    page.evaluate("() => window.jupyterapp.commands.execute('bgtasks:open-panel')")
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-BgTasks-connection")).to_have_attribute(
        "data-status", "live", timeout=15_000
    )
    return panel


def show_tab(panel: Locator, tab: str) -> None:
    panel.locator(f'.jp-BgTasks-tab[data-tab="{tab}"]').click()
    expect(panel.locator(f'.jp-BgTasks-list[data-tab="{tab}"]')).to_be_visible()


def row(panel: Locator, task_id: str) -> Locator:
    return panel.locator(f'.jp-BgTasks-row[data-task-id="{task_id}"]')


def progress_value(row_: Locator) -> float:
    return float(row_.locator("progress").evaluate("el => el.position >= 0 ? el.value : -1"))


def wait_progress(row_: Locator, above: float, timeout: float = 10) -> float:
    """The row's bar value once it is above ``above`` (-1: indeterminate)."""
    deadline = time.monotonic() + timeout
    while (value := progress_value(row_)) <= above:
        assert time.monotonic() < deadline, f"progress stuck at {value}"
        time.sleep(0.05)
    return value


def wait_state(server: LabServer, task_id: str, states: set[str], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = server.api("GET", f"{API}tasks/{task_id}")
        if task["state"] in states:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{task_id} still {task['state']}, not in {states}")


def notebook_json(cells: list[str]) -> str:
    return json.dumps({
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": source}
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    })
