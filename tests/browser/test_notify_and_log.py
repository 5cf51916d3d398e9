"""Notifications for tasks of notebooks open in this JupyterLab (and the setting that turns
them off), and the panel's log dialog, pushed over the events websocket, in a real
JupyterLab."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from .helpers import API, notebook_json, open_panel, row, show_tab, wait_state

if TYPE_CHECKING:
    from .conftest import LabServer

TOAST = ".jp-toast-message"


def open_notebook(page: Page, path: str) -> None:
    """Open ``path`` and wait until it is the current document with an idle kernel (the
    restored workspace may show other notebooks beside it)."""
    page.evaluate(f"() => window.jupyterapp.commands.execute('docmanager:open', {{path: '{path}'}})")
    page.wait_for_function(
        "path => { const w = window.jupyterapp.shell.currentWidget;"
        " return w?.context?.path === path && w.sessionContext?.session?.kernel?.status === 'idle'; }",
        arg=path, timeout=30_000,
    )


def close_documents(page: Page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")


def run_all(page: Page) -> None:
    # Not awaited: the command's promise settles only once every cell has run.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def task_of_notebook(lab_server: LabServer, name: str) -> dict[str, object]:
    """The newest task called ``name``, once the notebook has launched it."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = lab_server.api("GET", f"{API}tasks?limit=50")["tasks"]
        found = [t for t in tasks if t["name"] == name]
        if found:
            return found[0]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"no task {name!r} was launched")


@pytest.fixture
def notifications_off(lab_server: LabServer) -> Iterator[None]:
    """The user setting ``notifications: "off"``, as the Settings Editor saves it."""
    settings = lab_server.root_dir.parent / "settings" / "jupyter-bgtasks" / "plugin.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"notifications": "off"}))
    try:
        yield
    finally:
        settings.unlink()


def test_a_notebook_task_ending_is_notified(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook open in JupyterLab whose cell runs in the background
    (lab_server.root_dir / "notify.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask notebook chore\nimport time\ntime.sleep(1.5)\nprint('chore done')",
    ]))
    page = lab_page
    open_notebook(page, "notify.ipynb")

    # When it is run (from the notebook, not from the panel) and the task ends
    run_all(page)
    task = task_of_notebook(lab_server, "notebook chore")
    assert wait_state(lab_server, str(task["id"]), {"finished"})["state"] == "finished"

    # Then JupyterLab notifies its end, with its actions
    toast = page.locator(TOAST).filter(has_text="notebook chore")
    expect(toast).to_contain_text("finished", timeout=10_000)
    page.wait_for_timeout(800)  # the toast slides in
    screenshot(page, "notify_notebook_task_finished")
    expect(page.locator(".jp-toast-button").filter(has_text="Show log").first).to_be_visible()
    close_documents(page)
    assert page_errors == []


def test_with_notifications_off_a_notebook_task_ends_silently(
    notifications_off: None,
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given the setting "off", and a notebook open whose cell runs in the background
    (lab_server.root_dir / "quiet.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask quiet chore\nimport time\ntime.sleep(1.5)",
    ]))
    page = lab_page
    setting = page.evaluate(
        "async () => (await window.jupyterapp.serviceManager.settings.fetch("
        "'jupyter-bgtasks:plugin')).raw"
    )
    assert json.loads(setting) == {"notifications": "off"}
    panel = open_panel(page)
    open_notebook(page, "quiet.ipynb")

    # When it is run and the task ends (the panel has heard of it)
    run_all(page)
    task = task_of_notebook(lab_server, "quiet chore")
    wait_state(lab_server, str(task["id"]), {"finished"})
    show_tab(panel, "finished")
    expect(row(panel, str(task["id"]))).to_have_attribute("data-state", "finished", timeout=10_000)

    # Then no notification shows
    page.wait_for_timeout(1500)
    expect(page.locator(TOAST).filter(has_text="quiet chore")).to_have_count(0)
    screenshot(page, "notify_off_no_toast")
    close_documents(page)
    assert page_errors == []


def test_the_log_dialog_grows_live_by_push_and_keeps_the_newest_line_in_view(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a running task that prints a line every 0.1 s, and the page's requests noted
    page = lab_page
    log_requests: list[str] = []
    def note(url: str) -> None:  # the REST log route only (not, say, a kernel's logo)
        if "/bgtasks/api/tasks/" in url and url.split("?")[0].endswith("/log"):
            log_requests.append(url)

    page.on("request", lambda r: note(r.url))
    panel = open_panel(page)
    task = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "chatty counter", "params": {"times": 300, "interval": 0.1}},
    )
    the_row = row(panel, task["id"])
    expect(the_row).to_have_attribute("data-state", "running", timeout=10_000)

    # When its log dialog is opened
    the_row.get_by_role("button", name="Show log").click()
    log = page.locator(".jp-BgTasks-logText")

    # Then the log grows while the dialog is open, past the dialog's height
    expect(log).to_contain_text("round 5 of 300", timeout=10_000)
    expect(log).to_contain_text("round 60 of 300", timeout=20_000)
    sizes = log.evaluate("el => [el.scrollHeight, el.clientHeight]")
    assert sizes[0] > sizes[1] * 1.5, sizes
    # And it shows the newest line: scrolled to the bottom
    gap = "el => el.scrollHeight - el.scrollTop - el.clientHeight"
    expect(log).to_contain_text("round 70 of 300", timeout=10_000)
    assert log.evaluate(gap) <= 8
    # (the text scrolls by itself: the dialog's body holds it all, the status line too)
    body = page.locator(".jp-Dialog-body")
    assert body.evaluate("el => el.scrollHeight - el.clientHeight") <= 1
    expect(page.locator(".jp-BgTasks-logStatus")).to_have_text("Live…")
    screenshot(page, "log_dialog_live_bottom")

    # When the user scrolls up to read, the text keeps coming but the view stays put
    log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    expect(log).to_contain_text("round 90 of 300", timeout=10_000)
    assert log.evaluate("el => el.scrollTop") == 0
    # And scrolling back down follows the newest line again
    log.evaluate("el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }")
    expect(log).to_contain_text("round 100 of 300", timeout=10_000)
    assert log.evaluate(gap) <= 8

    # And none of it came from polling the REST log route
    assert log_requests == [], log_requests
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    lab_server.api("POST", f"{API}tasks/{task['id']}/cancel")
    wait_state(lab_server, task["id"], {"cancelled", "failed", "finished"})
    assert page_errors == []


def test_the_log_dialog_of_an_ended_task_shows_it_all_and_says_so(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
) -> None:
    page = lab_page
    panel = open_panel(page)
    task = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": "short counter", "params": {"times": 3, "interval": 0.05}},
    )
    wait_state(lab_server, task["id"], {"finished"})
    show_tab(panel, "finished")
    row(panel, task["id"]).get_by_role("button", name="Log", exact=True).click()
    log = page.locator(".jp-BgTasks-logText")
    expect(log).to_contain_text("round 3 of 3", timeout=10_000)
    expect(log).to_have_attribute("data-done", "true")
    expect(page.locator(".jp-BgTasks-logStatus")).to_have_text("Task ended.")
    page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    assert page_errors == []


def test_the_cell_widgets_open_log_grows_and_shows_its_newest_line(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook whose background cell prints a line every 50 ms
    (lab_server.root_dir / "widgetlog.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext",
        "%%bgtask widget log\nimport time\nfor i in range(400):\n"
        "    print(f'line {i:03d}')\n    time.sleep(0.05)",
    ]))
    page = lab_page
    open_notebook(page, "widgetlog.ipynb")
    run_all(page)
    widget = page.locator(".jp-Notebook .jp-OutputArea .jp-BgTasks-cell").filter(
        has_text="widget log").first
    expect(widget).to_be_visible(timeout=20_000)

    # When the cell view's Log is opened
    widget.get_by_text("Log", exact=True).click()
    box = widget.locator(".jp-BgTasks-cellLogBox")

    # Then its text grows past the box's height, and the newest line stays in view
    expect(box).to_contain_text("line 040", timeout=15_000)
    expect(box).to_contain_text("line 080", timeout=15_000)
    below = ("el => el.firstElementChild.getBoundingClientRect().bottom"
             " - el.getBoundingClientRect().bottom")
    assert box.evaluate("el => el.scrollHeight > el.clientHeight * 1.5")
    assert box.evaluate(below) <= 1
    screenshot(page, "widget_log_newest_line")
    task = task_of_notebook(lab_server, "widget log")
    lab_server.api("POST", f"{API}tasks/{task['id']}/cancel")
    wait_state(lab_server, str(task["id"]), {"cancelled", "failed", "finished"})
    close_documents(page)
    assert page_errors == []
