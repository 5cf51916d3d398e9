"""The panel's Schedules tab in a real JupyterLab: a schedule made from the "New schedule"
form runs every 2 s, its next fire times show in the form's preview and its row, a bad cron
is named under the cron field, the Enabled switch stops its runs, Delete removes it; its
texts stay readable in JupyterLab Light and Dark."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.sync_api import Locator, Page, expect

from .helpers import API, notebook_json, open_panel, show_tab
from .test_panel_themes import CONTRAST, set_theme

if TYPE_CHECKING:
    from .conftest import LabServer

NAME = "every two"


def runs(server: LabServer, schedule_id: str) -> list[Any]:
    return list(server.api("GET", f"{API}tasks?schedule_id={schedule_id}&limit=1000")["tasks"])


def preview_times(form: Locator) -> list[datetime]:
    items = form.locator(".jp-BgTasks-previewTimes li")
    expect(items).to_have_count(5, timeout=10_000)
    return [
        datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
        for iso in items.evaluate_all("lis => lis.map(li => li.dataset.time)")
    ]


def wait_gaps(form: Locator, seconds: float, timeout: float = 10) -> list[datetime]:
    """The preview's 5 fire times once they are ``seconds`` apart (the preview keeps the
    previous draft's times while it checks the new one)."""
    deadline = time.monotonic() + timeout
    while True:
        times = preview_times(form)
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        if all(abs(gap - seconds) < 0.001 for gap in gaps):
            return times
        assert time.monotonic() < deadline, f"preview not {seconds} s apart: {times}"
        time.sleep(0.1)


def readable(page: Page, selectors: list[str]) -> dict[str, float]:
    """Contrast ratio of the first element of each selector (WCAG)."""
    return {s: round(page.locator(s).first.evaluate(CONTRAST), 2) for s in selectors}


def test_a_schedule_from_the_form_runs_shows_its_next_runs_stops_when_disabled_and_is_deleted(
    lab_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Given the panel's Schedules tab
    page = lab_page
    panel = open_panel(page)
    show_tab(panel, "schedules")

    # When "New schedule" is opened for the `count` kind, every 2 s
    panel.get_by_role("button", name="New schedule").click()
    form = panel.locator(".jp-BgTasks-scheduleForm")
    form.locator("#jp-BgTasks-schedule-kind").select_option("count")
    form.locator("#jp-BgTasks-schedule-name").fill(NAME)
    form.locator("input#root_times").fill("2")
    form.locator("input#root_interval").fill("0.1")
    form.locator("#jp-BgTasks-schedule-every").fill("2")

    # Then the server's preview shows the next 5 fire times, 2 s apart
    wait_gaps(form, 2)

    # When cron is chosen and a cron the server refuses is typed
    form.locator('input[type="radio"][value="cron"]').check()
    expect(form.locator("#jp-BgTasks-schedule-timezone")).not_to_have_value("")
    form.locator("#jp-BgTasks-schedule-cron").fill("61 * * * *")

    # Then its message shows under the cron field, and the preview has no times
    cron_error = form.locator('.jp-BgTasks-fieldError[data-field="cron"]')
    expect(cron_error).to_contain_text("61", timeout=10_000)
    expect(form.locator(".jp-BgTasks-previewTimes li")).to_have_count(0)
    screenshot(page, "schedules_form_bad_cron")

    # When a valid cron is typed, then back to every 2 s, and Create is clicked
    form.locator("#jp-BgTasks-schedule-cron").fill("0 9 * * 1-5")
    expect(cron_error).to_have_count(0, timeout=10_000)
    preview_times(form)
    form.locator('input[type="radio"][value="every"]').check()
    expect(form.locator("#jp-BgTasks-schedule-every")).to_have_value("2")
    wait_gaps(form, 2)
    screenshot(page, "schedules_form_preview")
    form.get_by_role("button", name="Create schedule").click()

    # Then the form closes and the schedule's row says what it does and when it runs next
    expect(form).to_have_count(0, timeout=10_000)
    the_row = panel.locator(f'.jp-BgTasks-scheduleRow[aria-label="{NAME}"]')
    expect(the_row).to_be_visible(timeout=10_000)
    schedule_id = str(the_row.get_attribute("data-schedule-id"))
    expect(the_row.locator(".jp-BgTasks-kind")).to_have_text("count")
    expect(the_row.locator(".jp-BgTasks-triggerWords")).to_have_text("every 2 s")
    expect(the_row.locator(".jp-BgTasks-next")).to_have_text(
        re.compile(r"^next (in [12] s|now)$"), timeout=10_000
    )
    stored = lab_server.api("GET", f"{API}schedules/{schedule_id}")
    assert stored["every"] == 2 and stored["params"] == {"times": 2, "interval": 0.1}, stored
    assert len(stored["next_runs"]) == 5, stored

    # And it runs: its last run's state shows in the row
    expect(the_row.locator(".jp-BgTasks-state")).to_be_visible(timeout=15_000)
    expect(the_row.locator(".jp-BgTasks-state")).to_have_text("finished", timeout=15_000)
    assert runs(lab_server, schedule_id)
    screenshot(page, "schedules_tab_light")

    # And its runs are listed from the row
    the_row.get_by_role("button", name="Runs").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-BgTasks-runs tbody tr").first).to_be_visible(timeout=10_000)
    screenshot(page, "schedules_runs_dialog")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # And its texts are readable in JupyterLab Dark too
    set_theme(page, "JupyterLab Dark", light=False)
    try:
        page.wait_for_timeout(400)  # the theme's colour transitions settle
        ratios = readable(page, [
            ".jp-BgTasks-scheduleRow .jp-BgTasks-name",
            ".jp-BgTasks-scheduleRow .jp-BgTasks-triggerWords",
            ".jp-BgTasks-scheduleRow .jp-BgTasks-next",
            ".jp-BgTasks-scheduleRow .jp-BgTasks-switch",
            ".jp-BgTasks-scheduleRow .jp-BgTasks-action:not(.jp-mod-warn)",
        ])
        screenshot(page, "schedules_tab_dark")
        assert min(ratios.values()) >= 4.5, ratios
    finally:
        set_theme(page, "JupyterLab Light", light=True)

    # When Edit opens the form with its values, and every 2 s becomes every 3 s
    the_row.get_by_role("button", name="Edit").click()
    edit = panel.locator(".jp-BgTasks-scheduleForm")
    expect(edit.locator("#jp-BgTasks-schedule-name")).to_have_value(NAME)
    expect(edit.locator("input#root_times")).to_have_value("2")
    edit.locator("#jp-BgTasks-schedule-every").fill("3")
    wait_gaps(edit, 3)
    edit.get_by_role("button", name="Save schedule").click()

    # Then the row and the server say every 3 s
    expect(edit).to_have_count(0, timeout=10_000)
    expect(the_row.locator(".jp-BgTasks-triggerWords")).to_have_text("every 3 s")
    assert lab_server.api("GET", f"{API}schedules/{schedule_id}")["every"] == 3

    # When the Enabled switch is turned off
    the_row.get_by_role("switch", name="Enabled").click()

    # Then the row says it is disabled, and no further run is made
    expect(the_row).to_have_attribute("data-enabled", "false", timeout=10_000)
    expect(the_row.locator(".jp-BgTasks-next")).to_have_text("disabled")
    assert lab_server.api("GET", f"{API}schedules/{schedule_id}")["enabled"] is False
    made = len(runs(lab_server, schedule_id))
    time.sleep(5)  # two and a half periods
    assert len(runs(lab_server, schedule_id)) == made
    screenshot(page, "schedules_disabled")

    # When Delete is clicked and confirmed
    the_row.get_by_role("button", name="Delete").click()
    confirm = page.locator(".jp-Dialog")
    expect(confirm).to_contain_text("will not run again")
    confirm.get_by_role("button", name="Delete schedule").click()

    # Then the row is gone, the server no longer has it, and its runs stay in the history
    expect(the_row).to_have_count(0, timeout=10_000)
    listed = lab_server.api("GET", f"{API}schedules")["schedules"]
    assert schedule_id not in {s["id"] for s in listed}
    assert len(runs(lab_server, schedule_id)) == made
    assert page_errors == []


def test_adding_a_notebook_parameter_in_the_schedule_form_creates_nothing(
    lab_page: Page, lab_server: LabServer, page_errors: list[str],
) -> None:
    # Given the New schedule form on the notebook kind, with a path
    (lab_server.root_dir / "daily.ipynb").write_text(notebook_json(["print(n)"]))
    panel = open_panel(lab_page)
    show_tab(panel, "schedules")
    panel.get_by_role("button", name="New schedule").click()
    form = panel.locator(".jp-BgTasks-scheduleForm")
    form.locator("#jp-BgTasks-schedule-kind").select_option("notebook")
    form.locator("input#root_path").fill("daily.ipynb")
    form.locator("#jp-BgTasks-schedule-every").fill("60")

    # When "Add" is clicked under the parameters
    form.get_by_role("button", name="Add").click()

    # Then a parameter row appears, the form stays open, and no schedule was made
    expect(form.locator("fieldset#root_parameters input.jp-FormGroup-contentItem")).to_have_count(1)
    lab_page.wait_for_timeout(500)
    expect(form).to_be_visible()
    assert lab_server.api("GET", f"{API}schedules")["schedules"] == []
    assert page_errors == []
