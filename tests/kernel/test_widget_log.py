"""The widget's live log in a real kernel: its text is pushed over the kernel's events
websocket (``follow_log``) while the log is open, with no ``GET log`` request."""

from __future__ import annotations

import time

from tests.kernel.conftest import Kernel

# A spy on the kernel's REST client: every request still goes out, and is noted.
SPY = """
from bgtasks_ext.kernel.client import Client
_requests = []
_real_request = Client.request
def _noted(self, method, path, *args, **kwargs):
    _requests.append(f"{method} {path}")
    return _real_request(self, method, path, *args, **kwargs)
Client.request = _noted
"""

SHOW_COUNT = """
from bgtasks_ext.kernel.client import get_client
from bgtasks_ext import attach
_t = get_client().create(kind="count", params={"times": 12, "interval": 0.25}, executor="thread")
h = attach(_t["id"])
h
"""


def log_values(kernel: Kernel, comm_id: str, since: float = 0.0, until: float = float("inf")) -> list[str]:
    """The values the log box was given, read between ``since`` and ``until``."""
    return [str(st["value"]) for at, cid, st in kernel.updates
            if cid == comm_id and "value" in st and since <= at <= until]


def test_the_open_log_grows_by_push_while_another_cell_runs(kernel: Kernel) -> None:
    # Given a running count task's widget in a kernel whose REST requests are noted
    kernel.execute_ok(SPY)
    kernel.execute_ok(SHOW_COUNT)
    task_id = kernel.eval("h.id")
    html_ids = [cid for cid in kernel.widgets_of("HTMLModel")
                if "bgtasks-log" in str(kernel.widgets[cid].get("value", ""))]
    assert len(html_ids) == 1, kernel.widgets
    log_id = html_ids[0]
    # When its log is opened, and the kernel then stays busy in another cell for 2 s
    kernel.execute_ok("_requests.clear(); h.widget.log_box.selected_index = 0")
    start = time.monotonic()
    result = kernel.wait_idle(kernel.execute_async("import time; time.sleep(2)"), timeout=20)
    end = time.monotonic()
    assert result.error is None
    # Then the log's text grew during that cell, several times, each time longer
    during = log_values(kernel, log_id, start, end)
    assert len(during) >= 3, during
    rounds = [v.count("round ") for v in during]
    assert rounds == sorted(rounds) and rounds[-1] > rounds[0], rounds
    # And it ends with the whole log once the task ends
    assert kernel.wait_for(lambda: "round 12 of 12" in str(kernel.widgets[log_id]["value"]), 20)
    # And no request read the log over REST: it was pushed
    requests_made = kernel.eval("_requests")
    assert not [r for r in requests_made if r.endswith("/log") or "/log?" in r], requests_made
    assert f"GET tasks/{task_id}/log" not in requests_made
    # And the box keeps the newest line in view (its scroll is anchored at the bottom)
    assert "flex-direction:column-reverse" in str(kernel.widgets[log_id]["value"])


def test_a_log_opened_after_the_end_shows_it_all_once(kernel: Kernel) -> None:
    # Given a task that finished before its log was opened
    kernel.execute_ok(SPY)
    kernel.execute_ok(SHOW_COUNT.replace('"times": 12, "interval": 0.25', '"times": 3, "interval": 0.01'))
    kernel.execute_ok("h.result(timeout=20)")
    log_id = next(cid for cid in kernel.widgets_of("HTMLModel")
                  if "bgtasks-log" in str(kernel.widgets[cid].get("value", "")))
    # When it is opened
    since = time.monotonic()
    kernel.execute_ok("_requests.clear(); h.widget.log_box.selected_index = 0")
    # Then the whole log shows, in one update, and the follow is over
    assert kernel.wait_for(lambda: "round 3 of 3" in str(kernel.widgets[log_id]["value"]), 10)
    kernel.drain(0.5)
    assert len(log_values(kernel, log_id, since)) == 1
    assert kernel.eval("h.widget._log_done") is True
    assert kernel.eval("[r for r in _requests if 'log' in r]") == []
