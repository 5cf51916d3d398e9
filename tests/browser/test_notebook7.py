"""The "Background Tasks" panel in Notebook 7 (SPEC §6: "Works in JupyterLab 4 and
Notebook 7"): in the tree view and in the notebook view, with a task submitted over REST
showing as a live row; and, with no status bar there, the running count in the top bar,
which opens the panel (SPEC §6: "An indicator in the top bar or status bar"). The
folder's Notebook 7 server (``nb_server`` in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import LabServer
from .helpers import API, PANEL, notebook_json, open_panel, row, wait_progress, wait_state
from .test_panel_themes import CONTRAST


def open_app(page: Page, server: LabServer, path: str) -> None:
    page.goto(server.lab_url(path))
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate(
        "async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }"
    )


@pytest.mark.parametrize("view", ["tree", "notebook"])
def test_the_panel_shows_a_rest_task_in_notebook_7(
    view: str,
    page: Page,
    nb_server: LabServer,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Notebook 7.6.5 itself throws "Cannot read properties of undefined (reading 'schema')"
    # from notebook_core while loading settings, with or without this extension: only
    # errors thrown from our code fail the test.
    stacks: list[str] = []
    page.on("pageerror", lambda error: stacks.append(error.stack or str(error)))

    # Given Notebook 7's tree view, or a notebook open in its notebook view
    if view == "notebook":
        (nb_server.root_dir / "nb7.ipynb").write_text(notebook_json(["1 + 1"]))
        open_app(page, nb_server, "notebooks/nb7.ipynb")
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=20_000)
    else:
        open_app(page, nb_server, "tree")
    assert page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
    assert page.evaluate("() => window.jupyterapp.hasPlugin('jupyter-bgtasks:plugin')")

    # When the panel is opened (the command, as from the palette or the View menu)
    panel = open_panel(page)
    # Then it sits in the shell's left area
    assert page.evaluate(
        "id => Array.from(window.jupyterapp.shell.widgets('left')).some(w => w.id === id)",
        PANEL.removeprefix("#"),
    )

    # When a task is submitted over REST
    task = nb_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": f"nb7 {view}", "params": {"times": 30, "interval": 0.2}},
    )

    # Then its row shows, running, with a moving bar
    the_row = row(panel, task["id"])
    expect(the_row).to_be_visible(timeout=10_000)
    expect(the_row.locator(".jp-BgTasks-name")).to_have_text(f"nb7 {view}")
    expect(the_row).to_have_attribute("data-state", "running", timeout=10_000)
    first = wait_progress(the_row, 0)
    assert 0 < first < wait_progress(the_row, first) < 1
    screenshot(page, f"notebook7_{view}_panel")

    nb_server.api("POST", f"{API}tasks/{task['id']}/cancel")
    wait_state(nb_server, task["id"], {"cancelled"})
    expect(the_row).to_have_count(0, timeout=10_000)
    ours = [stack for stack in stacks if "bgtasks" in stack.lower()]
    assert ours == [], ours
    assert all("notebook_core" in stack for stack in stacks), stacks


TOP_INDICATOR = "#jp-bgtasks-top-indicator"


@pytest.mark.parametrize("view", ["tree", "notebook"])
def test_the_top_bar_counts_running_tasks_and_opens_the_panel_in_notebook_7(
    view: str,
    page: Page,
    nb_server: LabServer,
    screenshot: Callable[[Page, str], Path],
) -> None:
    stacks: list[str] = []
    page.on("pageerror", lambda error: stacks.append(error.stack or str(error)))

    # Given Notebook 7 (no status bar), in its tree view or its notebook view
    if view == "notebook":
        (nb_server.root_dir / "nb7_top.ipynb").write_text(notebook_json(["2 + 2"]))
        open_app(page, nb_server, "notebooks/nb7_top.ipynb")
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=20_000)
        # the kernel's logo joins the top bar once the notebook has loaded
        expect(page.locator(".jp-Spinner")).to_have_count(0, timeout=20_000)
    else:
        open_app(page, nb_server, "tree")
    expect(page.locator("#jp-main-statusbar")).to_have_count(0)
    # Then the indicator sits in the shell's top area, in the top bar, with nothing running
    indicator = page.locator(TOP_INDICATOR)
    assert page.evaluate(
        "id => Array.from(window.jupyterapp.shell.widgets('top')).some(w => w.id === id)",
        TOP_INDICATOR.removeprefix("#"),
    )
    expect(page.locator(f"#top-panel {TOP_INDICATOR}")).to_be_visible()
    expect(indicator).to_have_text("0 running", timeout=15_000)
    expect(page.locator(PANEL)).not_to_be_visible()

    # When a task is submitted over REST and runs
    task = nb_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": f"nb7 top {view}", "params": {"times": 40, "interval": 0.2}},
    )
    wait_state(nb_server, task["id"], {"running"})
    # Then the top bar counts it
    expect(indicator).to_have_text("1 running", timeout=10_000)
    body = indicator.locator(".jp-BgTasks-indicatorBody")
    expect(body).to_have_attribute("data-running", "1")
    # inside the top bar, not pushed out of it
    box, bar = indicator.bounding_box(), page.locator("#top-panel").bounding_box()
    viewport = page.viewport_size
    assert box and bar and viewport, (box, bar, viewport)
    assert bar["y"] <= box["y"] and box["y"] + box["height"] <= bar["y"] + bar["height"] + 1
    assert box["x"] + box["width"] <= viewport["width"], box
    # readable there too (WCAG AA)
    assert indicator.locator(".jp-BgTasks-indicatorLabel").evaluate(CONTRAST) >= 4.5
    screenshot(page, f"notebook7_{view}_top_indicator")

    # When it is clicked
    body.click()
    # Then the panel opens, with the task's row in it
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    expect(row(panel, task["id"])).to_have_attribute("data-state", "running", timeout=10_000)
    screenshot(page, f"notebook7_{view}_top_indicator_opened")

    nb_server.api("POST", f"{API}tasks/{task['id']}/cancel")
    wait_state(nb_server, task["id"], {"cancelled"})
    expect(indicator).to_have_text("0 running", timeout=10_000)
    ours = [stack for stack in stacks if "bgtasks" in stack.lower()]
    assert ours == [], ours
    assert all("notebook_core" in stack for stack in stacks), stacks
