"""The panel's remaining entry points and row actions in a real JupyterLab: the status bar
indicator opens it; Retry (of a REST task and of a %%bgtask cell; greyed out for a cell that ran
inside its kernel), Delete and Show error on ended tasks."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from .helpers import API, PANEL, notebook_json, open_panel, row, show_tab, wait_state

if TYPE_CHECKING:
    from .conftest import LabServer


def test_clicking_the_status_bar_indicator_opens_the_panel(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given the left sidebar collapsed (the restored layout may have shown the panel)
    page = lab_page
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    expect(page.locator(PANEL)).to_be_hidden()
    indicator = page.locator(".jp-BgTasks-indicatorBody")
    expect(indicator).to_be_visible()
    expect(indicator).to_contain_text("running")

    # When the status bar indicator is clicked
    indicator.click()

    # Then the panel shows, live
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-BgTasks-connection")).to_have_attribute(
        "data-status", "live", timeout=15_000
    )
    screenshot(page, "panel_opened_from_indicator")

    # And the keyboard works too: collapse, focus the indicator, Enter
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    expect(panel).to_be_hidden()
    indicator.focus()
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    assert page_errors == []


def test_retry_on_a_cancelled_task_runs_a_new_task(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a task cancelled over REST, in the Failed tab
    page = lab_page
    panel = open_panel(page)
    old = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "retry me", "params": {"times": 4, "interval": 0.25}},
    )
    lab_server.api("POST", f"{API}tasks/{old['id']}/cancel")
    assert wait_state(lab_server, old["id"], {"cancelled"})["state"] == "cancelled"
    show_tab(panel, "failed")
    old_row = row(panel, old["id"])
    expect(old_row).to_have_attribute("data-state", "cancelled", timeout=10_000)

    # When Retry is clicked
    old_row.get_by_role("button", name="Retry").click()

    # Then the panel shows Pending with a new task of the same name, which runs to the end
    expect(panel.locator('.jp-BgTasks-list[data-tab="pending"]')).to_be_visible()
    new_row = panel.locator('.jp-BgTasks-row[aria-label="retry me"]')
    expect(new_row).to_be_visible(timeout=10_000)
    new_id = new_row.get_attribute("data-task-id")
    assert new_id and new_id != old["id"]
    expect(new_row).to_have_attribute("data-state", "running", timeout=10_000)
    screenshot(page, "panel_retry_running")
    new = wait_state(lab_server, new_id, {"finished", "failed", "cancelled"})
    assert new["state"] == "finished", new
    assert (new["kind"], new["name"], new["params"]) == ("count", "retry me", old["params"])
    # And the old one is still cancelled, in its place
    assert lab_server.api("GET", f"{API}tasks/{old['id']}")["state"] == "cancelled"
    show_tab(panel, "finished")
    expect(row(panel, new_id)).to_have_attribute("data-state", "finished")
    assert page_errors == []


def test_delete_on_a_finished_task_removes_it(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a finished task, in the Finished tab
    page = lab_page
    panel = open_panel(page)
    task = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "delete me", "params": {"times": 1, "interval": 0}},
    )
    assert wait_state(lab_server, task["id"], {"finished"})["state"] == "finished"
    show_tab(panel, "finished")
    the_row = row(panel, task["id"])
    expect(the_row).to_have_attribute("data-state", "finished", timeout=10_000)
    screenshot(page, "panel_before_delete")

    # When Delete is clicked
    the_row.get_by_role("button", name="Delete").click()

    # Then the row goes, and the server no longer knows the task
    expect(the_row).to_have_count(0, timeout=10_000)
    with pytest.raises(urllib.error.HTTPError) as caught:
        lab_server.api("GET", f"{API}tasks/{task['id']}")
    assert caught.value.code == 404
    screenshot(page, "panel_after_delete")
    assert page_errors == []


def test_show_error_on_a_failed_task_shows_type_message_and_traceback(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a task whose code raised (kind `boom`, see conftest.TEST_KINDS), in Failed
    page = lab_page
    panel = open_panel(page)
    task = lab_server.api(
        "POST", f"{API}tasks", {"kind": "boom", "name": "raises", "params": {"value": 9}}
    )
    failed = wait_state(lab_server, task["id"], {"failed"})
    assert failed["error"]["type"] == "ValueError", failed
    show_tab(panel, "failed")
    the_row = row(panel, task["id"])
    expect(the_row).to_have_attribute("data-state", "failed", timeout=10_000)

    # When Show error is clicked
    the_row.get_by_role("button", name="Show error").click()

    # Then the dialog shows the type, the message and the traceback through the kind's code
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-BgTasks-errorMessage")).to_contain_text(
        "ValueError: value 9 is too large for this test"
    )
    traceback = dialog.locator(".jp-BgTasks-traceback")
    expect(traceback).to_contain_text("Traceback")
    expect(traceback).to_contain_text("_check")
    expect(traceback).to_contain_text("bgtasks_browser_kinds.py")
    screenshot(page, "panel_show_error")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # And a task that timed out says so, with its reason
    slow = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "too slow", "params": {"times": 100, "interval": 0.05},
         "timeout": 0.2},
    )
    ended = wait_state(lab_server, slow["id"], {"failed"})
    assert ended["error"]["reason"] == "timeout", ended
    slow_row = row(panel, slow["id"])
    expect(slow_row).to_have_attribute("data-state", "failed", timeout=10_000)
    slow_row.get_by_role("button", name="Show error").click()
    expect(dialog.locator(".jp-BgTasks-errorMessage")).to_contain_text(
        "TimeoutError: timed out after 0.2 s (timeout)"
    )
    screenshot(page, "panel_show_error_timeout")
    dialog.get_by_role("button", name="Close").click()
    assert page_errors == []


def _retry_of(server: LabServer, old_id: str, timeout: float = 10) -> str:
    """The id of the task a Retry of ``old_id`` made (its ``origin.retry_of``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in server.api("GET", f"{API}tasks?limit=20")["tasks"]:
            if task["origin"].get("retry_of") == old_id:
                return str(task["id"])
        time.sleep(0.1)
    raise AssertionError(f"no task retries {old_id}")


def test_retry_of_a_failed_bgtask_cell_runs_it_again_without_its_kernel(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a %%bgtask cell, run in the browser, that failed: the file it reads was missing
    (lab_server.root_dir / "flag.txt").unlink(missing_ok=True)
    (lab_server.root_dir / "retry_cell.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask read the flag\nflag = open('flag.txt').read().strip()\nflag",
    ]))
    page = lab_page
    panel = open_panel(page)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('docmanager:open', {path: 'retry_cell.ipynb'})"
    )
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=20_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=30_000
    )
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    show_tab(panel, "failed")
    old_row = panel.locator('.jp-BgTasks-row[aria-label="read the flag"]')
    expect(old_row).to_have_attribute("data-state", "failed", timeout=30_000)
    old_id = old_row.get_attribute("data-task-id")
    assert old_id
    old = lab_server.api("GET", f"{API}tasks/{old_id}")
    assert (old["kind"], old["error"]["type"]) == ("code", "FileNotFoundError"), old
    # (the cell has run to its end: its widget shows the failure too)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=30_000
    )
    expect(page.locator(".jp-Notebook .jp-OutputArea").filter(
        has_text="read the flag").first).to_contain_text("failed", timeout=15_000)
    # And, since then, the file is there and the cell's kernel is gone
    (lab_server.root_dir / "flag.txt").write_text("green\n")
    lab_server.api("DELETE", f"api/kernels/{old['origin']['kernel_id']}")

    # When Retry is clicked on its row
    old_row.get_by_role("button", name="Retry").click()

    # Then a new task of the same name runs the stored cell to Finished, with no kernel
    # (a small cell on a warm worker may be done before its Pending row could be seen)
    expect(panel.locator('.jp-BgTasks-list[data-tab="pending"]')).to_be_visible()
    new_id = _retry_of(lab_server, old_id)
    new = wait_state(lab_server, new_id, {"finished", "failed", "cancelled"})
    assert new["state"] == "finished", new
    assert new["kind"] == "code" and new["origin"]["retry_of"] == old_id, new
    assert new["result_preview"]["value"] == "green", new
    show_tab(panel, "finished")
    expect(row(panel, new_id)).to_have_attribute("data-state", "finished", timeout=10_000)
    screenshot(page, "panel_retry_bgtask_cell")
    # And the failed run is still there, as it was
    show_tab(panel, "failed")
    expect(row(panel, old_id)).to_have_attribute("data-state", "failed")
    assert page_errors == []


def test_a_kernel_executor_cell_offers_no_retry_and_says_to_run_the_cell_again(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given two %%bgtask cells run in the browser, both finished: one ran inside its kernel
    # (--executor kernel), the other in a worker
    (lab_server.root_dir / "kernel_cell.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask --executor kernel in the kernel\nhere = 'kernel'",
        "%%bgtask in a worker\nthere = 'worker'",
    ]))
    page = lab_page
    panel = open_panel(page)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('docmanager:open', {path: 'kernel_cell.ipynb'})"
    )
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=20_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=30_000
    )
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    show_tab(panel, "finished")
    in_kernel = panel.locator('.jp-BgTasks-row[aria-label="in the kernel"]')
    in_worker = panel.locator('.jp-BgTasks-row[aria-label="in a worker"]')
    expect(in_kernel).to_have_attribute("data-state", "finished", timeout=30_000)
    expect(in_worker).to_have_attribute("data-state", "finished", timeout=30_000)
    kernel_id = in_kernel.get_attribute("data-task-id")
    assert kernel_id
    assert lab_server.api("GET", f"{API}tasks/{kernel_id}")["executor"] == "kernel"

    # Then the kernel one's Retry is there but disabled, its tooltip saying why and what to do
    retry = in_kernel.get_by_role("button", name="Retry")
    expect(retry).to_be_disabled()
    expect(retry).to_have_attribute("title", "Ran inside its kernel: run the cell again")
    # And the worker one's Retry is offered as before
    expect(in_worker.get_by_role("button", name="Retry")).to_be_enabled()
    screenshot(page, "panel_retry_disabled_kernel_executor")

    # When the disabled Retry is clicked anyway
    retry.click(force=True)
    # Then nothing is asked of the server: no new task, no error toast
    time.sleep(0.5)
    tasks = lab_server.api("GET", f"{API}tasks?limit=50")["tasks"]
    assert not [t for t in tasks if t["origin"].get("retry_of") == kernel_id], tasks
    expect(page.locator(".jp-toast-message").filter(has_text="Could not")).to_have_count(0)
    assert page_errors == []
