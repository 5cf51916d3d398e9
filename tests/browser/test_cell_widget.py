"""The cell's task view in real JupyterLab and Notebook 7: a %%bgtask cell run in a real
kernel, its output rendered from the browser's own connection to the server.

What issue #11 asked to see: the view's Cancel works while the kernel is busy in another
cell; after a page reload or a kernel restart the output is live again without running
anything; the view and the panel move together.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest
from playwright.sync_api import Page, expect

from .helpers import API, notebook_json, open_panel, row, wait_state
from .test_notebook7 import open_app
from .test_notify_and_log import close_documents, open_notebook, task_of_notebook
from .test_rerun_cell import run_cell

if TYPE_CHECKING:
    from .conftest import LabServer

VIEW = ".jp-Notebook .jp-OutputArea .jp-BgTasks-cell"
BOTH_BARS = """id => [
    document.querySelector(`.jp-BgTasks-cell[data-task-id='${id}'] .jp-BgTasks-cellBar`)
        ?.getAttribute('aria-valuenow'),
    document.querySelector(`li[data-task-id='${id}'] progress.jp-BgTasks-bar`)?.value,
]"""


def steps_cell(name: str, steps: int, pause: float = 0.1) -> str:
    return (f"%%bgtask {name}\nimport time\nfrom bgtasks_ext import progress\n"
            f"for i in range({steps}):\n    progress(i + 1, {steps}, f'step {{i + 1}}')\n"
            f"    time.sleep({pause})\nfinished_steps = {steps}")


def until_flag_cell(name: str, flag: Path) -> str:
    """A task that moves until the test creates ``flag``: the test decides when it ends
    (no waiting out a fixed length that must outlast a page reload on a slow machine)."""
    return (f"%%bgtask {name}\nimport os, time\nfrom bgtasks_ext import progress\ni = 0\n"
            f"while not os.path.exists({str(flag)!r}) and i < 3000:\n    i += 1\n"
            f"    progress(i, 3000, f'step {{i}}')\n    time.sleep(0.1)\nsteps_done = i")


def kernel_state(server: LabServer, kernel_id: str) -> str:
    return str(server.api("GET", f"api/kernels/{kernel_id}")["execution_state"])


def view_of(page: Page, task_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f"{VIEW}[data-task-id='{task_id}']")


def bar_value(page: Page, task_id: str) -> float:
    value = view_of(page, task_id).locator(".jp-BgTasks-cellBar").get_attribute("aria-valuenow")
    return float(value) if value is not None else -1.0


def wait_running_view(page: Page, server: LabServer, name: str) -> dict[str, object]:
    task = task_of_notebook(server, name)
    wait_state(server, str(task["id"]), {"running"})
    expect(view_of(page, str(task["id"]))).to_have_attribute("data-state", "running", timeout=15_000)
    return task


def launch(page: Page, server: LabServer, notebook: str, cell: str, name: str) -> dict[str, object]:
    """Open a notebook of `%load_ext bgtasks_ext` and ``cell``, run both, and return the
    cell's task once it runs and its view says so."""
    (server.root_dir / notebook).write_text(notebook_json(["%load_ext bgtasks_ext", cell]))
    open_notebook(page, notebook)
    run_cell(page, 0)
    page.wait_for_timeout(300)
    run_cell(page, 1)
    return wait_running_view(page, server, name)


def wait_bar_moves(page: Page, task_id: str, after: str) -> None:
    """The view's bar grows within 10 s (it is live, not a picture of the past)."""
    first = bar_value(page, task_id)
    deadline = time.monotonic() + 10
    while bar_value(page, task_id) <= first:
        assert time.monotonic() < deadline, f"the bar did not move after the {after}"
        time.sleep(0.2)


def cancel_while_busy(page: Page, server: LabServer, notebook: str,
                      screenshot: Callable[[Page, str], Path], shot: str) -> None:
    """The scenario of both front ends: a long task, then a cell that keeps the kernel
    busy; the view's Cancel ends the task while that cell still runs."""
    run_cell(page, 0)
    page.wait_for_timeout(300)
    run_cell(page, 1)
    task = wait_running_view(page, server, "busy cancel")
    task_id = str(task["id"])
    kernel_id = str((task["origin"] or {})["kernel_id"])  # type: ignore[index]
    run_cell(page, 2)  # time.sleep(45): the kernel is busy from now on
    deadline = time.monotonic() + 15
    while kernel_state(server, kernel_id) != "busy":
        assert time.monotonic() < deadline, "the sleeping cell never started"
        time.sleep(0.1)

    # When the view's Cancel is clicked while the kernel runs the sleeping cell
    clicked = time.monotonic()
    view_of(page, task_id).locator(".jp-BgTasks-cellCancel").click()

    # Then the task ends cancelled within 2 s, the kernel still busy when it lands
    ended = wait_state(server, task_id, {"cancelled", "failed", "finished"}, timeout=10)
    took = time.monotonic() - clicked
    assert ended["state"] == "cancelled"
    assert took < 2.0, f"cancel took {took:.2f} s"
    assert kernel_state(server, kernel_id) == "busy"
    expect(view_of(page, task_id)).to_have_attribute("data-state", "cancelled", timeout=5_000)
    screenshot(page, shot)
    server.api("POST", f"api/kernels/{kernel_id}/interrupt")


def test_cancel_works_while_the_kernel_is_busy_in_jupyterlab(
    lab_page: Page, lab_server: LabServer, page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    (lab_server.root_dir / "busy.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext", steps_cell("busy cancel", 600), "import time\ntime.sleep(45)",
    ]))
    open_notebook(lab_page, "busy.ipynb")
    cancel_while_busy(lab_page, lab_server, "busy.ipynb", screenshot, "cell_view_cancel_busy_lab")
    # The kernel-side widget is not shown as well: one view per output
    assert lab_page.locator(".jp-Notebook .jp-OutputArea .bgtasks-task").count() == 0
    close_documents(lab_page)
    assert page_errors == []


def test_cancel_works_while_the_kernel_is_busy_in_notebook_7(
    page: Page, nb_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    (nb_server.root_dir / "busy7.ipynb").write_text(notebook_json([
        "%load_ext bgtasks_ext", steps_cell("busy cancel", 600), "import time\ntime.sleep(45)",
    ]))
    open_app(page, nb_server, "notebooks/busy7.ipynb")
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
        timeout=30_000)
    cancel_while_busy(page, nb_server, "busy7.ipynb", screenshot, "cell_view_cancel_busy_nb7")


def test_after_a_page_reload_the_view_is_live_again_and_reaches_finished(
    lab_page: Page, lab_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a running task's view in a saved notebook
    flag = lab_server.root_dir / "reload.done"
    page = lab_page
    task_id = str(launch(page, lab_server, "reload.ipynb", until_flag_cell("reload me", flag),
                         "reload me")["id"])
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10_000)

    # When the page is reloaded (no cell runs again)
    page.reload()
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    open_notebook(page, "reload.ipynb")

    # Then the same output shows the task live: its bar moves, and it reaches finished
    view = view_of(page, task_id)
    expect(view).to_have_attribute("data-state", "running", timeout=30_000)
    wait_bar_moves(page, task_id, "reload")
    flag.touch()
    expect(view).to_have_attribute("data-state", "finished", timeout=30_000)
    assert bar_value(page, task_id) == 1.0
    screenshot(page, "cell_view_after_reload")
    close_documents(page)


def test_after_a_kernel_restart_the_view_stays_live(
    lab_page: Page, lab_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    # Given a running server-scoped task's view
    flag = lab_server.root_dir / "restart.done"
    page = lab_page
    task = launch(page, lab_server, "restart.ipynb", until_flag_cell("outlives its kernel", flag),
                  "outlives its kernel")
    task_id = str(task["id"])
    kernel_id = str((task["origin"] or {})["kernel_id"])  # type: ignore[index]

    # When the kernel is restarted
    lab_server.api("POST", f"api/kernels/{kernel_id}/restart")

    # Then the view keeps moving and reaches finished, with the new kernel idle meanwhile
    wait_bar_moves(page, task_id, "restart")
    flag.touch()
    expect(view_of(page, task_id)).to_have_attribute("data-state", "finished", timeout=30_000)
    assert wait_state(lab_server, task_id, {"finished"})["state"] == "finished"
    screenshot(page, "cell_view_after_restart")
    close_documents(page)


def test_the_view_and_the_panel_move_together(
    lab_page: Page, lab_server: LabServer, screenshot: Callable[[Page, str], Path],
) -> None:
    page = lab_page
    task_id = str(launch(page, lab_server, "together.ipynb", steps_cell("side by side", 60, 0.1),
                         "side by side")["id"])
    panel = open_panel(page)
    the_row = row(panel, task_id)
    expect(the_row).to_be_visible(timeout=10_000)
    # At several moments while it runs, both show the same progress, and it grows
    # (each view renders on its own tick: equal within a moment, not in the same frame)
    seen: list[float] = []
    for _ in range(5):
        deadline = time.monotonic() + 1.0
        while True:
            cell, side = page.evaluate(BOTH_BARS, task_id)
            assert cell is not None and side is not None
            if float(cell) == pytest.approx(float(side)) or time.monotonic() > deadline:
                break
            page.wait_for_timeout(30)
        assert float(cell) == pytest.approx(float(side)), (cell, side)
        seen.append(float(cell))
        page.wait_for_timeout(700)
    assert seen == sorted(seen) and seen[-1] > seen[0], seen
    screenshot(page, "cell_view_and_panel")
    lab_server.api("POST", f"{API}tasks/{task_id}/cancel")
    close_documents(page)
