"""The panel under JupyterLab Light and JupyterLab Dark: its text must stay readable
(computed colours, WCAG AA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from .helpers import API, open_panel, row, wait_progress, wait_state

if TYPE_CHECKING:
    from .conftest import LabServer

# WCAG 2 contrast ratio of a colour on the nearest opaque background behind the element.
CONTRAST = """el => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  let bg = null;
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) { bg = c; break; }
  }
  bg = (bg || [255, 255, 255]).slice(0, 3);
  // Themes give text colours with alpha (rgba(255,255,255,.54)): blend over the background.
  const [r, g, b_, alpha = 1] = rgb(getComputedStyle(el).color);
  const fg = [r, g, b_].map((v, i) => alpha * v + (1 - alpha) * bg[i]);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""

# Every text of the panel and its status bar item, at WCAG AA for normal text (4.5:1).
CHECKS = {
    selector: 4.5
    for selector in (
        ".jp-BgTasks",
        ".jp-BgTasks-title",
        ".jp-BgTasks-tab.jp-mod-current",
        ".jp-BgTasks-tab:not(.jp-mod-current)",
        ".jp-BgTasks-row .jp-BgTasks-name",
        ".jp-BgTasks-row .jp-BgTasks-kind",
        ".jp-BgTasks-row .jp-BgTasks-state",
        ".jp-BgTasks-row .jp-BgTasks-progressLabel",
        ".jp-BgTasks-row .jp-BgTasks-elapsed",
        ".jp-BgTasks-row .jp-BgTasks-origin",
        ".jp-BgTasks-row .jp-BgTasks-action:not(.jp-mod-warn)",
        ".jp-BgTasks-row .jp-BgTasks-action.jp-mod-warn",
        ".jp-BgTasks-indicatorLabel",
    )
}


def set_theme(page: Page, theme: str, light: bool) -> None:
    page.evaluate(
        "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    page.wait_for_function(
        "light => document.body.dataset.jpThemeLight === String(light)", arg=light,
        timeout=15_000,
    )


# Every state a badge can show (`types.ts` State); rows of most of them live in other tabs.
STATES = ("pending", "running", "cancelling", "finished", "failed", "cancelled")

# A badge of each state, made next to the running row's own badge, measured the same way.
BADGE_RATIOS = """([states, contrast]) => {
  const real = document.querySelector('.jp-BgTasks-row .jp-BgTasks-state');
  const measure = eval(contrast);
  const out = {};
  for (const state of states) {
    const badge = document.createElement('span');
    badge.className = `jp-BgTasks-state jp-BgTasks-state-${state}`;
    badge.textContent = state;
    real.parentElement.appendChild(badge);
    out[state] = Math.round(measure(badge) * 100) / 100;
    badge.remove();
  }
  return out;
}"""

THEMES = {"JupyterLab Light": True, "JupyterLab Dark": False}


@pytest.fixture
def themed_page(lab_page: Page, request: pytest.FixtureRequest) -> Iterator[Page]:
    """``lab_page`` in the theme ``request.param``; Light again afterwards (the theme is a
    user setting, shared by every test of the folder)."""
    set_theme(lab_page, request.param, light=THEMES[request.param])
    try:
        yield lab_page
    finally:
        set_theme(lab_page, "JupyterLab Light", light=True)


@pytest.mark.parametrize("themed_page", list(THEMES), indirect=True)
def test_the_panel_is_readable_in_both_themes(
    themed_page: Page,
    lab_server: LabServer,
    page_errors: list[str],
    screenshot: Callable[[Page, str], Path],
    request: pytest.FixtureRequest,
) -> None:
    # Given the panel in the theme with a task running
    page = themed_page
    theme = request.node.callspec.params["themed_page"]
    short = "light" if THEMES[theme] else "dark"
    panel = open_panel(page)
    task = lab_server.api(
        "POST", f"{API}tasks",
        {"kind": "count", "name": f"{short} counter", "params": {"times": 40, "interval": 0.25}},
    )
    try:
        the_row = row(panel, task["id"])
        expect(the_row).to_have_attribute("data-state", "running", timeout=10_000)
        wait_progress(the_row, 0)
        page.wait_for_timeout(400)  # the theme's colour transitions settle
        # (JupyterLab keeps the count in the status bar; the top area is Notebook 7's place)
        expect(page.locator("#jp-main-statusbar .jp-BgTasks-indicatorLabel")).to_have_text(
            "1 running"
        )
        expect(page.locator("#jp-bgtasks-top-indicator")).to_have_count(0)

        # Then every text in it stands out from what is behind it
        ratios = {}
        for selector, least in CHECKS.items():
            element = page.locator(selector).first
            expect(element).to_be_visible()
            ratios[selector] = round(element.evaluate(CONTRAST), 2)
        # And so does the badge of every state, not only the running one
        badges = page.evaluate(BADGE_RATIOS, [list(STATES), CONTRAST])
        ratios.update({f"badge {state}": ratio for state, ratio in badges.items()})
        screenshot(page, f"panel_{short}_running")
        print(f"contrast ratios in {theme}:", ratios)
        low = {s: r for s, r in ratios.items() if r < CHECKS.get(s, 4.5)}
        assert not low, f"too little contrast in {theme}: {low} (all: {ratios})"

    finally:  # a failure leaves no task running for the next test
        lab_server.api("POST", f"{API}tasks/{task['id']}/cancel")
        wait_state(lab_server, task["id"], {"cancelled"})
    assert page_errors == []
