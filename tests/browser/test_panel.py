"""The "Background Tasks" panel in a real JupyterLab: live rows, Cancel, the form, the
status bar count, and a task launched by ``%%bgtask`` from a notebook in the browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Page, expect

from .helpers import (
    API, notebook_json, open_panel, progress_value, row, show_tab, wait_progress, wait_state,
)

if TYPE_CHECKING:
    from .conftest import LabServer


def test_a_rest_task_shows_live_progress_and_cancel_moves_it_to_failed(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given the panel open on the Pending tab
    page = lab_page
    panel = open_panel(page)
    expect(page.locator(".jp-BgTasks-indicatorBody")).to_be_visible()

    # When a task is submitted over REST, outside the browser
    task = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "rest counter", "params": {"times": 40, "interval": 0.25}},
    )

    # Then its row appears in Pending, with a progress bar that moves
    the_row = row(panel, task["id"])
    expect(the_row).to_be_visible(timeout=10_000)
    expect(the_row.locator(".jp-BgTasks-name")).to_have_text("rest counter")
    expect(the_row.locator(".jp-BgTasks-kind")).to_have_text("count")
    expect(the_row).to_have_attribute("data-state", "running", timeout=10_000)
    first = wait_progress(the_row, 0)
    second = wait_progress(the_row, first)
    assert 0 < first < second < 1, (first, second)
    expect(the_row.locator(".jp-BgTasks-elapsed")).to_contain_text("running")
    # And the status bar counts it
    expect(page.locator(".jp-BgTasks-indicatorBody")).to_have_attribute("data-running", "1")
    screenshot(page, "panel_pending_live")

    # When its live log is opened
    the_row.get_by_role("button", name="Show log").click()
    log = page.locator(".jp-BgTasks-logText")
    expect(log).to_contain_text("round 1 of 40", timeout=10_000)
    expect(log).to_contain_text("round 3 of 40", timeout=10_000)
    screenshot(page, "panel_live_log")
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    # When Cancel is clicked, and the warning is confirmed
    the_row.get_by_role("button", name="Cancel").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("nothing it did is undone")
    screenshot(page, "panel_cancel_dialog")
    dialog.get_by_role("button", name="Cancel task").click()

    # Then the task leaves Pending for Failed, as cancelled, and the count drops to 0
    expect(the_row).to_have_count(0, timeout=15_000)
    assert wait_state(lab_server, task["id"], {"cancelled"})["state"] == "cancelled"
    show_tab(panel, "failed")
    failed_row = row(panel, task["id"])
    expect(failed_row).to_have_attribute("data-state", "cancelled")
    expect(failed_row.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.locator(".jp-BgTasks-indicatorBody")).to_have_attribute("data-running", "0")
    screenshot(page, "panel_failed_tab")
    assert page_errors == []


def test_the_new_task_form_runs_a_task_to_finished(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given the panel with its "New task" form open
    page = lab_page
    panel = open_panel(page)
    panel.get_by_role("button", name="New task").click()
    form = panel.locator(".jp-BgTasks-newTask")
    expect(form.locator("#jp-BgTasks-kind")).to_be_visible()
    # (it offers what a browser can launch: the server says `code` needs a kernel)
    offered = form.locator("#jp-BgTasks-kind option").evaluate_all("os => os.map(o => o.value)")
    assert "count" in offered and "code" not in offered, offered
    form.locator("#jp-BgTasks-kind").select_option("count")
    times = form.locator("input#root_times")
    expect(times).to_be_visible()

    # When a name the server refuses (over 200 characters) is sent
    form.locator("#jp-BgTasks-name").fill("x" * 250)
    form.get_by_role("button", name="Run task").click()

    # Then the server's message shows under the name field
    expect(form.locator('.jp-BgTasks-fieldError[data-field="name"]')).to_contain_text(
        "200", timeout=10_000
    )
    screenshot(page, "panel_form_server_error")

    # When the form is filled in properly and submitted
    form.locator("#jp-BgTasks-name").fill("form counter")
    times.fill("4")
    form.locator("input#root_interval").fill("0.3")
    screenshot(page, "panel_form_filled")
    form.get_by_role("button", name="Run task").click()

    # Then the task runs, and its row reaches Finished
    expect(panel.locator(".jp-BgTasks-newTask")).to_have_count(0)
    created = panel.locator('.jp-BgTasks-row[aria-label="form counter"]')
    expect(created).to_be_visible(timeout=10_000)
    task_id = created.get_attribute("data-task-id")
    assert task_id
    task = wait_state(lab_server, task_id, {"finished"})
    assert task["params"] == {"times": 4, "interval": 0.3}
    show_tab(panel, "finished")
    done = row(panel, task_id)
    expect(done).to_have_attribute("data-state", "finished")
    assert progress_value(done) == 1.0
    # And, launched from this browser, its end is announced
    expect(page.locator(".jp-toast-message").filter(
        has_text="form counter")).to_contain_text("finished", timeout=10_000)
    page.wait_for_timeout(800)  # the toast slides in
    screenshot(page, "panel_finished_notification")
    assert page_errors == []


def test_a_bgtask_cell_shows_its_widget_and_its_row_in_the_panel(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook whose cell runs in the background with %%bgtask
    (lab_server.root_dir / "bg.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask notebook counter\nimport time\nfrom bgtasks_ext import progress\n"
        "for i in range(40):\n    progress(i + 1, total=40, message=f'step {i + 1}')\n"
        "    time.sleep(0.25)",
    ]))
    page = lab_page
    panel = open_panel(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'bg.ipynb'})")
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=20_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
        1, timeout=30_000
    )

    # When it is run in the browser
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # Then the panel shows its row, and the cell the task's widget, both moving
    nb_row = panel.locator('.jp-BgTasks-row[aria-label="notebook counter"]')
    expect(nb_row).to_be_visible(timeout=15_000)
    expect(nb_row).to_have_attribute("data-state", "running", timeout=15_000)
    first = wait_progress(nb_row, 0)
    assert 0 < first < wait_progress(nb_row, first) < 1
    expect(nb_row.locator(".jp-BgTasks-origin")).to_have_text("bg.ipynb")
    widget = page.locator(".jp-Notebook .jp-OutputArea .jp-BgTasks-cell").filter(
        has_text="notebook counter").first
    expect(widget).to_be_visible(timeout=15_000)
    expect(widget.locator(".jp-BgTasks-cellBar").first).to_be_visible()
    screenshot(page, "panel_notebook_bgtask")

    # When another tab is in front and the row's notebook link is clicked
    current = "() => window.jupyterapp.shell.currentWidget?.context?.path ?? null"
    page.evaluate("() => window.jupyterapp.commands.execute('launcher:create')")
    page.wait_for_function(f"() => ({current})() === null")
    task_id = nb_row.get_attribute("data-task-id")
    origin = lab_server.api("GET", f"{API}tasks/{task_id}")["origin"]
    nb_row.locator(".jp-BgTasks-origin").click()

    # Then the notebook is the current document again
    page.wait_for_function(f"() => ({current})() === 'bg.ipynb'", timeout=10_000)
    assert origin["path"].endswith("bg.ipynb"), origin
    lab_server.api("POST", f"{API}tasks/{task_id}/cancel")
    wait_state(lab_server, str(task_id), {"cancelled", "failed", "finished"})
    assert page_errors == []
