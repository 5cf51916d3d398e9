"""The task under a notebook cell, drawn by the labextension from the browser's own
connection (issue #11), from a hand-made output: the task bundle's view wins over the
ipywidgets widget-view of the same output (JupyterLab and Notebook 7), and a task whose
inputs are still being sent says so, then goes live when it arrives, or says they never
did. (Real ``%%bgtask`` cells: ``test_cell_widget.py``.)

The cells display the bundle the kernel displays (``application/vnd.bgtasks.task+json``
beside a widget-view and a text line) for a task made over REST, so these tests need
only the server and the labextension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from .conftest import LabServer
from .helpers import API, notebook_json
from .test_notify_and_log import close_documents, open_notebook
from .test_rerun_cell import run_cell

TASK_MIME = "application/vnd.bgtasks.task+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# Launch a task over REST from the kernel (its BGTASKS_URL/TOKEN) and display the task
# bundle, with a widget-view whose model no kernel has: were ipywidgets chosen, it would
# show "Error displaying widget".
HELPER = """\
import json, os, urllib.request
from IPython.display import display

def launch(kind, params, name):
    body = json.dumps({"kind": kind, "params": params, "name": name}).encode()
    request = urllib.request.Request(
        os.environ["BGTASKS_URL"] + "tasks", data=body, method="POST",
        headers={"Authorization": "bgtasks " + os.environ["BGTASKS_TOKEN"],
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)["id"]

def show(task_id, name, sending=0, note=None):
    display({
        "%s": {"version": 1, "task_id": task_id, "name": name, "sending": sending, "note": note},
        "%s": {"version_major": 2, "version_minor": 0, "model_id": "gone-" + task_id},
        "text/plain": f"task {name} ({task_id})",
    }, raw=True)
""" % (TASK_MIME, WIDGET_MIME)


def cell_view(page: Page, index: int) -> Locator:
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-BgTasks-cell")


def assert_only_our_view(page: Page, index: int) -> None:
    """The output shows our view and nothing of the widget-view of the same bundle."""
    outputs = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    expect(outputs).to_have_count(1)
    expect(outputs.first).to_have_class(re.compile(r"\bjp-BgTasks-cellOutput\b"))
    expect(outputs.first.locator(".jupyter-widgets")).to_have_count(0)
    expect(outputs.first).not_to_contain_text("Error displaying widget")


def reserve(lab_server: LabServer) -> str:
    """An id reserved as a kernel reserves one before sending big inputs."""
    reply = lab_server.api("POST", f"{API}tasks?check_only=true&payload_size=0&reserve=true",
                           {"kind": "count", "params": {"times": 6, "interval": 0.25}})
    return str(reply["id"])


def test_a_task_still_being_sent_shows_so_then_goes_live_when_it_arrives(
    lab_page: Page, lab_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a cell output for a task whose 300 MB of inputs are still on their way
    task_id = reserve(lab_server)
    (lab_server.root_dir / "sending.ipynb").write_text(notebook_json([
        HELPER + f"\nshow({task_id!r}, 'sent later', sending=300_000_000)",
        HELPER + "\nshow('0' * 32, 'lost on the way', sending=300_000_000)",
    ]))
    page = lab_page
    open_notebook(page, "sending.ipynb")
    run_cell(page, 0)
    page.wait_for_timeout(300)
    run_cell(page, 1)

    # Then it says so, with a moving bar, and it is our view, not the widget-view
    view = cell_view(page, 0)
    expect(view).to_contain_text("sending inputs (300 MB) from the kernel", timeout=15_000)
    expect(view).to_have_attribute("data-phase", "sending")
    assert_only_our_view(page, 0)
    # And an output whose inputs the server no longer expects says they never arrived
    expect(cell_view(page, 1)).to_contain_text(
        "never reached the server: the kernel stopped sending its inputs (300 MB)", timeout=15_000)
    screenshot(page, "cell_view_sending")

    # When the upload ends and the server creates the task with the reserved id
    created = lab_server.api("POST", f"{API}tasks?reserved={task_id}",
                             {"kind": "count", "params": {"times": 6, "interval": 0.25},
                              "name": "sent later"})
    assert created["id"] == task_id

    # Then the same output is the task's live view, to its end
    expect(view).to_have_attribute("data-state", "running", timeout=10_000)
    expect(view).to_have_attribute("data-state", "finished", timeout=20_000)
    close_documents(page)


# -- Notebook 7 ---------------------------------------------------------------------------


def test_notebook_7_shows_the_view_instead_of_the_widget(
    page: Page,
    nb_server: LabServer,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Notebook 7.6.5 throws a settings error of its own at load (see test_notebook7.py):
    # only errors from our code fail the test.
    stacks: list[str] = []
    page.on("pageerror", lambda error: stacks.append(error.stack or str(error)))

    # Given Notebook 7's notebook view of a notebook whose cell shows a task
    (nb_server.root_dir / "nb7cell.ipynb").write_text(notebook_json([
        HELPER + "\nshow(launch('count', {'times': 8, 'interval': 0.25}, 'nb7 count'), 'nb7 count')",
    ]))
    page.goto(nb_server.lab_url("notebooks/nb7cell.ipynb"))
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate(
        "async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }"
    )
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status"
        " === 'idle'", timeout=30_000,
    )

    # When the cell runs
    run_cell(page, 0)

    # Then our live view is the output (not the widget-view) and it reaches finished
    view = cell_view(page, 0)
    expect(view).to_have_attribute("data-state", "running", timeout=20_000)
    assert_only_our_view(page, 0)
    expect(view).to_have_attribute("data-state", "finished", timeout=20_000)
    expect(view.locator(".jp-BgTasks-cellBar")).to_have_attribute("data-value", "1")
    screenshot(page, "cell_view_notebook7")
    assert [s for s in stacks if "jupyter-bgtasks" in s or "jupyter_bgtasks" in s] == []


def test_an_untrusted_notebooks_output_asks_before_it_cancels(
    lab_page: Page, lab_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a running task, and a notebook from elsewhere (untrusted: never run here)
    # whose saved output names it
    task = lab_server.api("POST", f"{API}tasks", {"kind": "count", "params": {"times": 200,
                                                                              "interval": 0.1}})
    nb = json.loads(notebook_json(["print('hello')"]))
    nb["cells"][0]["outputs"] = [{
        "output_type": "display_data", "metadata": {},
        "data": {TASK_MIME: {"version": 1, "task_id": task["id"], "name": "someone's task",
                             "sending": 0, "note": None},
                 "text/plain": "a task"}}]
    (lab_server.root_dir / "untrusted.ipynb").write_text(json.dumps(nb))
    page = lab_page
    open_notebook(page, "untrusted.ipynb")
    view = cell_view(page, 0)
    expect(view).to_have_attribute("data-state", "running", timeout=15_000)

    # When its Cancel is clicked / Then the panel's warning asks first; keeping it keeps it
    view.locator(".jp-BgTasks-cellCancel").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Cancel this task?")
    screenshot(page, "cell_view_untrusted_cancel")
    dialog.get_by_role("button", name="Keep it").click()
    page.wait_for_timeout(500)
    assert lab_server.api("GET", f"{API}tasks/{task['id']}")["state"] == "running"
    # And confirming cancels it
    view.locator(".jp-BgTasks-cellCancel").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Cancel task").click()
    expect(view).to_have_attribute("data-state", "cancelled", timeout=10_000)
    close_documents(page)
