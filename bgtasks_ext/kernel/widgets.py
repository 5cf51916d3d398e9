"""The task widget and the tasks table: thin ipywidgets views over server records.

Behaviour lives in :class:`~.handle.TaskHandle` and the events thread; these classes
only turn a task record into widget traits. Updates arrive from background threads
(the events thread, which also brings an open log's new text, pushed by the server, and
one ticker thread that advances elapsed/ETA), which ipywidgets sends to the frontend
whether the kernel is idle or busy. A lock per widget keeps those two threads from
interleaving one render.
"""

from __future__ import annotations

import html
import math
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

import ipywidgets as w

from ..core.states import TERMINAL_NAMES as TERMINAL
from .client import Client, TaskDict
from .units import human_bytes

BAR_STYLE = {"pending": "", "running": "info", "cancelling": "warning",
             "finished": "success", "failed": "danger", "cancelled": "warning"}
STATE_COLOR = {"pending": "#777", "running": "#1976d2", "cancelling": "#f57c00",
               "finished": "#388e3c", "failed": "#d32f2f", "cancelled": "#f57c00"}
TASK_MIME = "application/vnd.bgtasks.task+json"
"""The output the JupyterLab extension renders as a live view of the task, from the
browser's own connection to the server (labextension/src/cellrender.ts): its data is
only ``{"version", "task_id", "name", "sending", "note"}``. It ranks before ipywidgets'
view there; front ends without the extension show the widget of this module instead."""
LOG_TAIL = 20_000
"""Characters of log the widget keeps: the panel and REST have the rest."""
TICK = 1.0
SHOW_SENT_FROM = 64 << 10
"""Bytes of input from which the widget says how much was sent with the task."""


def _parse_time(value: Any) -> float | None:
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_number(value: float) -> str:
    """A count or amount as people write it: ``60``, ``1,234,567`` (whole numbers, big
    ones with thousands separators), ``10.3``, ``0.00123`` (3 significant digits), and
    ``1,235`` for a big fraction (its unit is enough). Mirrors the panel's ``formatNumber``."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) or abs(value) >= 100:
        return f"{round(value):,}"
    return f"{value:.3g}"


def starts(run_on: float, now: float) -> str:
    """``starts in 45 s``, ``starts in 3 min``, or the local time: ``starts 14:05``
    (``starts 2026-12-01 09:00`` on another day). Mirrors the panel's ``startsLabel``."""
    ahead = run_on - now
    if round(ahead) < 60:
        return f"starts in {max(1, round(ahead))} s"
    if round(ahead / 60) < 60:
        return f"starts in {round(ahead / 60)} min"
    at = datetime.fromtimestamp(run_on)
    same_day = at.date() == datetime.fromtimestamp(now).date()
    return "starts " + at.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


def timing(task: TaskDict, now: float | None = None) -> str:
    """``elapsed 0:12 · ETA 0:30`` from the record's start/finish times and fraction;
    for a task still to start, when it starts (``run_on``) or ``waiting``."""
    now = time.time() if now is None else now
    start = _parse_time(task.get("started_at"))
    if start is None:
        if task.get("state") != "pending":
            return ""
        run_on = _parse_time(task.get("run_on"))
        return starts(run_on, now) if run_on is not None and run_on > now else "waiting"
    end = _parse_time(task.get("finished_at")) or now
    elapsed = max(0.0, end - start)
    text = f"elapsed {_duration(elapsed)}"
    fraction = (task.get("progress") or {}).get("fraction")
    if task.get("state") == "running" and isinstance(fraction, (int, float)) and 0 < fraction < 1:
        text += f" · ETA {_duration(elapsed * (1 - fraction) / fraction)}"
    return text


def log_html(text: str) -> str:
    """The log box. ``column-reverse`` anchors its scroll at the bottom, so the newest
    line shows as text arrives (as in a terminal), without any script; ``flex:none``
    keeps the text from being shrunk to the box (front ends style ``pre`` blocks)."""
    return ("<div class='bgtasks-log' style='max-height:15em;overflow:auto;display:flex;"
            "flex-direction:column-reverse'><pre style='margin:0;flex:none'>"
            f"{html.escape(text)}</pre></div>")


def _nothing() -> None:
    return None


def _say(label: w.Label, text: str) -> None:
    """Set a line's text; an empty line is hidden rather than left as a blank row."""
    label.value = text
    label.layout.display = "" if text else "none"


class _Ticker:
    """One daemon thread for all widgets of the kernel: elapsed time moves every
    second even when no event arrives (logs are pushed: nothing is polled)."""

    def __init__(self) -> None:
        self.widgets: weakref.WeakSet[TaskWidget] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, widget: TaskWidget) -> None:
        with self._lock:
            self.widgets.add(widget)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bgtasks-ticker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            for widget in list(self.widgets):
                try:
                    widget.tick()
                except Exception:  # noqa: S110 - never print from a background thread
                    pass


_ticker = _Ticker()


class TaskSource(Protocol):
    """What a :class:`TaskWidget` shows and acts on (a :class:`~.handle.TaskHandle`):
    the widget is a view; the handle holds the record and the behaviour."""

    client: Client

    @property
    def id(self) -> str: ...

    @property
    def task(self) -> TaskDict: ...

    def done(self) -> bool: ...

    def add_listener(self, callback: Callable[[TaskDict], None]) -> None: ...

    def cancel(self) -> Any: ...


class TaskWidget(w.VBox):  # type: ignore[misc]
    """Name, state, progress bar styled by state, message, elapsed/ETA, Cancel, a
    collapsible live log, the error with its traceback, and a note line."""

    def __init__(self, handle: TaskSource, **kwargs: Any) -> None:
        self.handle = handle
        self._render_lock = threading.RLock()
        self._log_offset = 0
        self._log_text = ""
        self._log_done = False
        self._unfollow_log: Callable[[], None] | None = None
        self.title = w.HTML()
        self.state_label = w.HTML()
        self.timing = w.Label()
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="40%"))
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="warning",
                                      tooltip="Stop this task (nothing it already did is undone)",
                                      layout=w.Layout(width="auto"))
        # Lines that take no room while they say nothing (an empty Label is a blank row).
        self.message = w.Label(layout=w.Layout(display="none"))
        self.note = w.Label(layout=w.Layout(display="none"))
        self.error = w.HTML(layout=w.Layout(display="none"))
        self.log_view = w.HTML(value=log_html(""))
        self.log_box = w.Accordion(children=[self.log_view], selected_index=None)
        self.log_box.set_title(0, "Log")
        self.cancel_button.on_click(self._on_cancel)
        self.log_box.observe(self._on_log_toggle, names="selected_index")
        header = w.HBox([self.title, self.state_label, self.bar, self.timing, self.cancel_button],
                        layout=w.Layout(align_items="center", gap="0.6em"))
        super().__init__([header, self.message, self.note, self.error, self.log_box], **kwargs)
        self.add_class("bgtasks-task")
        self.render(handle.task)
        handle.add_listener(self.render)
        _ticker.add(self)

    # -- the output ----------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """This widget's view, plus the task's own output (:data:`TASK_MIME`) for front ends
        that render it live from the server, and a one-line text for the rest (nbconvert)."""
        data: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        handle = self.handle
        task_id = getattr(handle, "known_id", "") or handle.task.get("id")
        if data is None or not task_id:
            return data
        sending = getattr(handle, "sent_bytes", 0) if getattr(handle, "sending_now", False) else 0
        data[TASK_MIME] = {"version": 1, "task_id": str(task_id), "name": self._name(handle.task),
                           "sending": int(sending), "note": self.note.value or None}
        data["text/plain"] = repr(handle)
        return data

    @staticmethod
    def _name(task: TaskDict) -> str:
        return str(task.get("name") or task.get("kind") or task.get("id"))

    # -- rendering ------------------------------------------------------------------------
    def render(self, task: TaskDict) -> None:
        """Show ``task`` (called in the events thread on every change)."""
        with self._render_lock:
            state = str(task.get("state", ""))
            self.title.value = f"<b>{html.escape(self._name(task))}</b>" + self._sent()
            color = STATE_COLOR.get(state, "#777")
            self.state_label.value = f"<span style='color:{color};font-weight:600'>{state}</span>"
            progress = task.get("progress") or {}
            fraction = progress.get("fraction")
            if isinstance(fraction, (int, float)):
                self.bar.value = float(fraction)
            elif state == "finished":
                self.bar.value = 1.0
            self.bar.bar_style = BAR_STYLE.get(state, "")
            _say(self.message, self._message(progress))
            self.timing.value = timing(task)
            self.cancel_button.disabled = state in TERMINAL or state == "cancelling"
            # A disabled orange button still reads as an action: grey it out.
            self.cancel_button.button_style = "" if self.cancel_button.disabled else "warning"
            error = task.get("error")
            if error:
                self.error.value = (
                    f"<div style='color:#d32f2f'><b>{html.escape(str(error.get('type')))}: "
                    f"{html.escape(str(error.get('message')))}</b></div>"
                    f"<pre style='font-size:85%;max-height:20em;overflow:auto'>"
                    f"{html.escape(str(error.get('traceback') or ''))}</pre>")
                self.error.layout.display = ""
            else:  # e.g. a retry that finished: the earlier attempt's error is gone
                self.error.layout.display = "none"
            if self.log_box.selected_index is not None and self._unfollow_log is None:
                self._follow_log()  # opened while the task was still being sent

    def _sent(self) -> str:
        """`` · 300 MB sent``: the size of the inputs that went with the task, once gone
        (while they go, the message line counts them)."""
        size = getattr(self.handle, "sent_bytes", 0)
        if size < SHOW_SENT_FROM or getattr(self.handle, "sending_now", False):
            return ""
        return f" <span style='opacity:0.7'>· {human_bytes(size)} sent</span>"

    @staticmethod
    def _message(progress: dict[str, Any]) -> str:
        current, total = progress.get("current"), progress.get("total")
        count = ""
        if isinstance(current, (int, float)) and (current or total):
            count = human_number(current) + (
                f" / {human_number(total)}" if isinstance(total, (int, float)) else "")
        parts = [p for p in (count, progress.get("message") or "") if p]
        return " · ".join(parts)

    def set_note(self, text: str) -> None:
        """A line under the bar, e.g. ``outputs set: a, b`` (set by the magic)."""
        with self._render_lock:
            _say(self.note, text)

    def tick(self) -> None:
        task = self.handle.task
        if task.get("state") in TERMINAL:
            return
        with self._render_lock:
            self.timing.value = timing(task)

    # -- the log -------------------------------------------------------------------------
    def _on_log_toggle(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self._follow_log()
        else:
            with self._render_lock:
                unfollow, self._unfollow_log = self._unfollow_log, None
            if unfollow is not None:
                unfollow()

    def _follow_log(self) -> None:
        """While the log is open, the server pushes its new text over the kernel's events
        websocket (``follow_log``): no request per second, and it stops at the task's end."""
        task_id = self.handle.task.get("id")  # None while the task is still being sent
        with self._render_lock:
            if self._unfollow_log is not None or self._log_done or not task_id:
                return
            self._unfollow_log = _nothing  # taken: a render meanwhile does not follow twice
        unfollow = self.handle.client.events.follow_log(str(task_id), self._on_log, self._log_offset)
        with self._render_lock:
            if self._unfollow_log is _nothing:
                self._unfollow_log = unfollow
                return
        unfollow()  # closed (or ended) meanwhile

    def _on_log(self, msg: dict[str, Any]) -> None:
        """New text (in the events thread)."""
        with self._render_lock:
            if msg.get("end"):
                self._log_done = True
                self._unfollow_log = None
            if msg.get("error"):
                return
            if int(msg.get("offset", 0)) > self._log_offset:
                self._log_text = ""  # the head was trimmed by the server's cap
            self._log_offset = int(msg.get("next_offset", self._log_offset))
            if msg.get("text"):
                self._log_text = (self._log_text + msg["text"])[-LOG_TAIL:]
                self.log_view.value = log_html(self._log_text)

    # -- actions -------------------------------------------------------------------------
    def _on_cancel(self, _button: Any) -> None:
        self.cancel_button.disabled = True
        try:
            self.handle.cancel()
        except Exception as exc:
            _say(self.message, f"cancel failed: {exc}")
            self.cancel_button.disabled = self.handle.done()


class TasksTable(w.VBox):  # type: ignore[misc]
    """A live table of tasks (this kernel's, or all with ``kernel_id=None``), one row
    per task with a progress bar and a Cancel button."""

    def __init__(self, client: Client, kernel_id: str | None = None, limit: int = 50) -> None:
        self.client = client
        self.kernel_id = kernel_id
        self.rows: dict[str, tuple[w.HBox, w.HTML, w.FloatProgress, w.Label, w.Button]] = {}
        self._lock = threading.RLock()
        self._boxes: list[w.HBox] = []
        super().__init__([])
        page = client.list(kernel_id=kernel_id, limit=limit)
        for task in reversed(page.get("tasks", [])):
            self.update(task)
        self._unwatch = client.watch_all(self.update)

    def _row(self, task: TaskDict) -> tuple[w.HBox, w.HTML, w.FloatProgress, w.Label, w.Button]:
        name = w.HTML(layout=w.Layout(width="30%"))
        bar = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="30%"))
        state = w.Label(layout=w.Layout(width="20%"))
        button = w.Button(description="Cancel", icon="stop", layout=w.Layout(width="auto"))
        task_id = task["id"]

        def cancel(_b: Any) -> None:
            button.disabled = True
            try:
                self.client.cancel(task_id)
            except Exception:  # noqa: S110 - already ended: the row shows it
                pass

        button.on_click(cancel)
        return w.HBox([name, bar, state, button]), name, bar, state, button

    def update(self, task: TaskDict) -> None:
        if self.kernel_id is not None and (task.get("origin") or {}).get("kernel_id") != self.kernel_id:
            return
        with self._lock:
            row = self.rows.get(task["id"])
            if row is None:
                row = self.rows[task["id"]] = self._row(task)
                self._boxes.insert(0, row[0])  # newest first
                self.children = tuple(self._boxes)
            _, name, bar, state, button = row
            label = task.get("name") or task.get("kind")
            # The whole id: its first characters are a time, the same for tasks made in
            # the same minute, and %bgtasks attach needs all of it.
            name.value = (f"<b>{html.escape(str(label))}</b> "
                          f"<code style='font-size:85%;user-select:all'>{html.escape(str(task['id']))}</code>")
            fraction = (task.get("progress") or {}).get("fraction")
            bar.value = float(fraction) if isinstance(fraction, (int, float)) else (
                1.0 if task.get("state") == "finished" else bar.value)
            bar.bar_style = BAR_STYLE.get(str(task.get("state")), "")
            state.value = f"{task.get('state')} {timing(task)}"
            button.disabled = task.get("state") in TERMINAL
