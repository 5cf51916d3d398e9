"""Re-running a ``%%bgtask`` cell in real JupyterLab supersedes its previous task (issue
#10, item 1): the old task is cancelled, its outputs never land, the new widget says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

from .helpers import API, notebook_json, wait_state
from .test_notify_and_log import close_documents, open_notebook

if TYPE_CHECKING:
    from .conftest import LabServer


def run_cell(page: Page, index: int, source: str | None = None) -> None:
    """Make cell ``index`` active (optionally with new source) and run it, as Shift+Enter
    would, without moving on."""
    page.evaluate(
        """([index, source]) => {
            const panel = window.jupyterapp.shell.currentWidget;
            const notebook = panel.content;
            if (source !== null) notebook.widgets[index].model.sharedModel.setSource(source);
            notebook.activeCellIndex = index;
            window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        [index, source],
    )


def tasks_named(lab_server: LabServer, name: str) -> list[dict[str, object]]:
    tasks = lab_server.api("GET", f"{API}tasks?limit=50")["tasks"]
    return sorted((t for t in tasks if t["name"] == name), key=lambda t: str(t["created_at"]))


def test_rerunning_a_bgtask_cell_supersedes_its_running_task(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook whose background cell sleeps, then assigns who it was
    (lab_server.root_dir / "rerun.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "tag, delay = 'first', 6",
        "%%bgtask rerun\nimport time\ntime.sleep(delay)\nwho = tag",
        "print('who is', who)",
    ]))
    page = lab_page
    open_notebook(page, "rerun.ipynb")
    for index in (0, 1, 2):
        run_cell(page, index)
        page.wait_for_timeout(300)
    deadline = time.monotonic() + 30
    while not tasks_named(lab_server, "rerun") and time.monotonic() < deadline:
        time.sleep(0.1)
    (first,) = tasks_named(lab_server, "rerun")

    # When the user changes the inputs and runs the same cell again while it still runs
    run_cell(page, 1, "tag, delay = 'second', 0.5")
    page.wait_for_timeout(300)
    run_cell(page, 2)

    # Then the first task is cancelled and the second finishes
    assert wait_state(lab_server, str(first["id"]), {"cancelled", "failed", "finished"})["state"] == "cancelled"
    deadline = time.monotonic() + 30
    while len(tasks_named(lab_server, "rerun")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    second = tasks_named(lab_server, "rerun")[-1]
    assert second["id"] != first["id"]
    assert wait_state(lab_server, str(second["id"]), {"finished"})["state"] == "finished"

    # And the cell's widget says it superseded the first task
    cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
    expect(cell.locator(".jp-BgTasks-cell")).to_contain_text(f"superseded task {first['id']}", timeout=10_000)
    expect(cell.locator(".jp-BgTasks-cell")).to_contain_text("outputs set: who", timeout=10_000)
    screenshot(page, "rerun_cell_superseded")

    # And once the first task's sleep would have ended, who is still the second run's
    page.wait_for_timeout(6_500)
    run_cell(page, 3)
    expect(page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".jp-OutputArea")).to_contain_text(
        "who is second", timeout=15_000)
    close_documents(page)
    assert page_errors == []
