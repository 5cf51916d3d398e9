"""Notebook jobs from JupyterLab: "Run in background" in the file browser's context menu and
the notebook toolbar makes a `notebook` task; its row reaches Finished and opens the executed
copy; a file the server refuses shows the server's message."""

from __future__ import annotations

import json
import re
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Locator, Page, expect

from .helpers import API, PANEL, notebook_json, open_panel, row, show_tab, wait_state
from .test_notify_and_log import TOAST, close_documents

if TYPE_CHECKING:
    from .conftest import LabServer

COPY_NAME = r"report\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?\.ipynb"


def file_item(page: Page, name: str) -> Locator:
    """The file browser's row of ``name`` (the browser shown, at the root)."""
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:refresh')")
    item = page.locator(".jp-DirListing-item").filter(
        has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    )
    expect(item).to_be_visible(timeout=10_000)
    return item


def job_of(server: LabServer, path: str) -> dict[str, Any]:
    """The newest notebook task of ``path`` (the browser has created it by now)."""
    tasks = server.api("GET", f"{API}tasks?kind=notebook&limit=50")["tasks"]
    found = [t for t in tasks if t["params"]["path"] == path]
    assert found, f"no notebook task of {path}"
    return found[0]  # type: ignore[no-any-return]


def finished_row(panel: Locator, server: LabServer, task_id: str) -> Locator:
    """The task's row in the Finished tab once it finished (a warm job may be done before
    its row was ever seen in Pending)."""
    task = wait_state(server, task_id, {"finished", "failed", "cancelled"}, timeout=60)
    assert task["state"] == "finished", task
    show_tab(panel, "finished")
    done = row(panel, task_id)
    expect(done).to_have_attribute("data-state", "finished", timeout=10_000)
    return done


def run_from_context_menu(page: Page, name: str) -> None:
    file_item(page, name).click(button="right")
    page.locator(".lm-Menu-item").filter(has_text="Run in background").click()


def test_run_in_background_from_the_file_browser_then_open_the_executed_copy(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook in the server's root, shown in the file browser
    (lab_server.root_dir / "report.ipynb").write_text(notebook_json([
        "print('hello from the report')",
        "answer = 6 * 7\nprint('answer', answer)",
    ]))
    page = lab_page

    # When "Run in background" is chosen in its context menu
    run_from_context_menu(page, "report.ipynb")

    # Then a notification says it runs, and its "Show" opens the panel
    toast = page.locator(".Toastify__toast").filter(
        has=page.locator(TOAST, has_text="report.ipynb runs in the background")
    )
    expect(toast).to_be_visible(timeout=10_000)
    toast.get_by_role("button", name="Show", exact=True).click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    task_id = job_of(lab_server, "report.ipynb")["id"]

    # And its row reaches Finished: the file run to the end, its two cells counted
    done = finished_row(panel, lab_server, task_id)
    expect(done.locator(".jp-BgTasks-name")).to_have_text("report.ipynb")
    expect(done.locator(".jp-BgTasks-kind")).to_have_text("notebook")
    task = lab_server.api("GET", f"{API}tasks/{task_id}")
    assert (task["progress"]["current"], task["progress"]["total"]) == (2, 2)
    copy = task["result_preview"]["executed_copy"]
    assert re.fullmatch(COPY_NAME, copy), copy
    screenshot(page, "notebook_job_finished")

    # When "Open executed copy" is clicked
    done.get_by_role("button", name="Open executed copy").click()

    # Then the copy opens in a new tab, with the outputs of the run
    tab = page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    expect(tab).to_have_text(re.compile(COPY_NAME), timeout=15_000)
    assert tab.inner_text() == copy.rsplit("/", 1)[-1]
    outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    expect(outputs.first).to_contain_text("hello from the report", timeout=15_000)
    expect(outputs.nth(1)).to_contain_text("answer 42")
    shot = screenshot(page, "notebook_job_copy_opened")
    # The row beside the copy it opened (docs/images/notebook-job.png is one of these)
    page.screenshot(
        path=str(shot.with_name("notebook_job_row_and_copy.png")),
        clip={"x": 0, "y": 0, "width": 900, "height": 290},
    )
    close_documents(page)
    assert page_errors == []


def test_the_toolbar_button_saves_the_open_notebook_then_runs_it(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
) -> None:
    # Given a notebook open in JupyterLab, changed and not saved
    (lab_server.root_dir / "edited.ipynb").write_text(notebook_json(["print('as saved')"]))
    page = lab_page
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'edited.ipynb'})")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w?.context?.path === 'edited.ipynb' && w.context.isReady; }"
    )
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells.get(0)"
        ".sharedModel.setSource(\"print('as edited')\")"
    )
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")

    # When its toolbar's "Run in background" button is clicked
    button = page.locator(
        '.jp-NotebookPanel:visible .jp-Toolbar [data-command="bgtasks:run-notebook"]'
    )
    expect(button).to_be_visible()
    button.click()

    # Then the notebook is saved first, and the task runs the edited file
    expect(page.locator(TOAST).filter(has_text="edited.ipynb runs in the background")).to_be_visible(
        timeout=10_000
    )
    assert not page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
    saved = json.loads((lab_server.root_dir / "edited.ipynb").read_text())
    assert "".join(saved["cells"][0]["source"]) == "print('as edited')"
    task = job_of(lab_server, "edited.ipynb")
    finished_row(open_panel(page), lab_server, task["id"])
    log = lab_server.api("GET", f"{API}tasks/{task['id']}/log")["text"]
    assert "as edited" in log, log
    close_documents(page)
    assert page_errors == []


def test_a_file_the_server_refuses_shows_its_message(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
) -> None:
    # Given a file named like a notebook that is not one, which the server refuses
    (lab_server.root_dir / "broken.ipynb").write_text("this is not JSON")
    with pytest.raises(urllib.error.HTTPError) as refused:
        lab_server.api("POST", f"{API}tasks", {"kind": "notebook", "params": {"path": "broken.ipynb"}})
    assert refused.value.code == 400
    reply = json.loads(refused.value.read())
    assert reply["field"] == "params.path", reply

    # When "Run in background" is chosen for it
    run_from_context_menu(lab_page, "broken.ipynb")

    # Then the notification says it was not run, in the server's words (a toast shows 140
    # characters: "Details" shows them all)
    toast = lab_page.locator(TOAST).filter(has_text="Could not run broken.ipynb")
    expect(toast).to_be_visible(timeout=10_000)
    expect(toast).to_contain_text(reply["message"][:60])
    lab_page.locator(".Toastify__toast").filter(has=toast).get_by_role(
        "button", name="Details"
    ).click()
    dialog = lab_page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(reply["message"])
    dialog.get_by_role("button").last.click()
    expect(dialog).to_have_count(0)
    assert not list(lab_server.root_dir.glob("broken.*.ipynb"))
    assert page_errors == []


def test_the_new_task_form_runs_a_notebook_and_shows_the_path_refused(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
) -> None:
    # Given the "New task" form on the notebook kind
    (lab_server.root_dir / "formed.ipynb").write_text(notebook_json(["print('n is', repr(n))"]))
    panel = open_panel(lab_page)
    panel.get_by_role("button", name="New task").click()
    form = panel.locator(".jp-BgTasks-newTask")
    form.locator("#jp-BgTasks-kind").select_option("notebook")
    path = form.locator("input#root_path")
    expect(path).to_be_visible()
    # (an optional kernel name is a plain text field, not a choice between two schemas)
    expect(form.locator("input#root_kernel_name")).to_be_visible()

    # When a path that does not exist is sent
    path.fill("missing.ipynb")
    form.get_by_role("button", name="Run task").click()

    # Then the server's message shows under the path field
    path_field = path.locator("xpath=ancestor::div[contains(@class, 'form-group')][1]")
    expect(path_field).to_contain_text("params.path", timeout=10_000)
    expect(path_field).to_contain_text("missing.ipynb")

    # When the path is corrected and a parameter added (Add adds a row, it sends nothing)
    path.fill("formed.ipynb")
    form.get_by_role("button", name="Add").click()
    key = form.locator("fieldset#root_parameters input.jp-FormGroup-contentItem")
    key.fill("n")
    key.blur()
    form.locator("input#root_parameters_n").fill("3")
    tasks = lab_server.api("GET", f"{API}tasks?kind=notebook&limit=50")["tasks"]
    assert not [t for t in tasks if t["params"]["path"] == "formed.ipynb"], "Add submitted the form"
    form.get_by_role("button", name="Run task").click()

    # Then the notebook runs to Finished, with the parameter as a number
    expect(panel.locator(".jp-BgTasks-newTask")).to_have_count(0)
    task_id = job_of(lab_server, "formed.ipynb")["id"]
    finished_row(panel, lab_server, task_id)
    task = lab_server.api("GET", f"{API}tasks/{task_id}")
    assert task["params"]["parameters"] == {"n": 3}
    assert "n is 3" in lab_server.api("GET", f"{API}tasks/{task_id}/log")["text"]
    assert page_errors == []
