"""The task under a notebook cell, drawn by the labextension from the browser's own
connection (issue #11): in JupyterLab and Notebook 7 the task bundle's view wins over the
ipywidgets widget-view of the same output, its Cancel ends the task while the kernel is
busy in another cell, and a page reload or a kernel restart leaves it live.

The cells display the bundle the kernel displays (``application/vnd.bgtasks.task+json``
beside a widget-view and a text line) for a task made over REST, so these tests need
only the server and the labextension; the kernel side's ``%%bgtask`` displays the same.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import LabServer, run_jupyter
from .helpers import API, notebook_json, wait_state
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


def bar_value(view: Locator) -> float:
    return float(view.locator(".jp-BgTasks-cellBar").get_attribute("data-value") or "-1")


def wait_bar_above(view: Locator, above: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    while (value := bar_value(view)) <= above:
        assert time.monotonic() < deadline, f"the bar is stuck at {value}"
        time.sleep(0.05)
    return value


def assert_only_our_view(page: Page, index: int) -> None:
    """The output shows our view and nothing of the widget-view of the same bundle."""
    outputs = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")
    expect(outputs).to_have_count(1)
    expect(outputs.first).to_have_class(re.compile(r"\bjp-BgTasks-cellOutput\b"))
    expect(outputs.first.locator(".jupyter-widgets")).to_have_count(0)
    expect(outputs.first).not_to_contain_text("Error displaying widget")


def kernel_status(page: Page) -> str:
    return str(page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
    ))


def launched(page: Page, lab_server: LabServer, name: str) -> str:
    """The id of the newest task called ``name``, once the cell has launched it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = lab_server.api("GET", f"{API}tasks?limit=50")["tasks"]
        found = [t for t in tasks if t["name"] == name]
        if found:
            return str(found[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no task {name!r} was launched")


def test_the_view_wins_over_the_widget_and_cancels_while_the_kernel_is_busy(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a notebook whose cell shows a long counting task, and a cell that keeps the
    # kernel busy
    (lab_server.root_dir / "cellview.ipynb").write_text(notebook_json([
        HELPER,
        "show(launch('count', {'times': 200, 'interval': 0.2}, 'long count'), 'long count')",
        "import time\ntime.sleep(30)",
    ]))
    page = lab_page
    open_notebook(page, "cellview.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    view = cell_view(page, 1)
    expect(view).to_have_attribute("data-state", "running", timeout=20_000)
    task_id = launched(page, lab_server, "long count")

    # Then our view is the output, not the ipywidgets widget-view, and it moves
    assert_only_our_view(page, 1)
    expect(view).to_have_attribute("data-task-id", task_id)
    expect(view.locator(".jp-BgTasks-cellName")).to_have_text("long count")
    first = wait_bar_above(view, 0.0)
    wait_bar_above(view, first)
    expect(view.locator(".jp-BgTasks-cellTiming")).to_contain_text("elapsed")

    # When the kernel is busy in another cell and the user clicks the view's Cancel
    run_cell(page, 2)
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        " === 'busy'"
    )
    clicked = time.monotonic()
    view.locator(".jp-BgTasks-cellCancel").click()

    # Then the task is cancelled within 2 s, and the kernel is still busy when it lands
    assert wait_state(lab_server, task_id, {"cancelled", "failed", "finished"}, timeout=5)[
        "state"] == "cancelled"
    assert time.monotonic() - clicked < 2.0
    assert kernel_status(page) == "busy"
    expect(view).to_have_attribute("data-state", "cancelled", timeout=5_000)
    expect(view.locator(".jp-BgTasks-cellCancel")).to_be_disabled()
    screenshot(page, "cell_view_cancelled_while_busy")
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                  ".interrupt()")
    close_documents(page)
    assert page_errors == []


def test_reload_and_kernel_restart_leave_the_view_live(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a saved notebook whose cell shows a running task, and one whose task the
    # server does not know
    (lab_server.root_dir / "reload.ipynb").write_text(notebook_json([
        HELPER,
        "show(launch('count', {'times': 100, 'interval': 0.25}, 'survivor'), 'survivor')",
        "show('0000-not-a-task', 'ghost')",
    ]))
    page = lab_page
    open_notebook(page, "reload.ipynb")
    for index in (0, 1, 2):
        run_cell(page, index)
    view = cell_view(page, 1)
    expect(view).to_have_attribute("data-state", "running", timeout=20_000)
    task_id = launched(page, lab_server, "survivor")
    expect(cell_view(page, 2)).to_contain_text("is not on this server", timeout=10_000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty"
    )

    # When the page is reloaded mid-task (no cell is run again)
    page.reload()
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate(
        "async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }"
    )
    open_notebook(page, "reload.ipynb")

    # Then the output is the live view again, moving
    view = cell_view(page, 1)
    expect(view).to_have_attribute("data-state", "running", timeout=15_000)
    assert_only_our_view(page, 1)
    before = wait_bar_above(view, 0.0)
    wait_bar_above(view, before)

    # When the kernel restarts mid-task
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()"
    )

    # Then the view still moves and reaches finished, with the server's record
    after = wait_bar_above(view, bar_value(view))
    assert after > before
    expect(view).to_have_attribute("data-state", "finished", timeout=45_000)
    assert lab_server.api("GET", f"{API}tasks/{task_id}")["state"] == "finished"
    expect(view.locator(".jp-BgTasks-cellMessage")).to_contain_text("100 / 100")
    screenshot(page, "cell_view_after_reload_and_restart")
    close_documents(page)
    assert page_errors == []


# -- Notebook 7 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    with run_jupyter(
        tmp_path_factory.mktemp("nb7cell"), "notebook", "JupyterNotebookApp",
        "notebook-cell-server.log", home="tree",
    ) as server:
        yield server


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
