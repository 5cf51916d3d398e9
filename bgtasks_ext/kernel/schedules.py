"""A schedule as the notebook sees it: :class:`ScheduleHandle`, its widget, and the
``%bgtasks schedules`` table.

A schedule is made from a cell (``%%bgtask --every 5``) or a call
(``bgtasks_ext.schedule(fn, every=5)``) with its inputs frozen at creation: every run
gets the same pickled job, so later changes in the kernel do not reach it, and no run's
outputs land in this namespace (a run ends whenever the schedule says, usually while
other cells run: setting names then would be a surprise, and many runs would overwrite
each other). Each run is a task: its result is in the panel and over REST.

The handle holds the server's latest JSON of the schedule, kept current by the kernel's
events websocket (``schedule`` messages, and ``task`` messages of its runs for their
state), never polled. The widgets are views over it; their Enable/Disable button sends
``PATCH enabled`` from the events thread's executor, so a click never blocks the
kernel's shell while the request goes out, and works from any thread.
"""

from __future__ import annotations

import html
import threading
from datetime import datetime
from typing import Any, Callable

import ipywidgets as w

from ..core.states import TERMINAL_NAMES as TERMINAL
from .client import Client, TaskDict
from .widgets import STATE_COLOR, _parse_time, _say

NEXT_SHOWN = 3
"""Fire times the widget lists (the JSON carries five)."""
_UNITS = ((86400, "d"), (3600, "h"), (60, "min"))


def span_words(seconds: float) -> str:
    """``30 s``, ``5 min``, ``1 h 30 min``, ``0.5 s``: a span in its largest whole units.
    Mirrors the panel's ``spanWords`` (labextension/src/words.ts)."""
    parts: list[str] = []
    rest = max(0.0, float(seconds))
    for size, unit in _UNITS:
        if rest >= size:
            n = int(rest // size + 1e-9)
            parts.append(f"{n} {unit}")
            rest -= n * size
    if rest > 1e-9 or not parts:
        parts.append(f"{round(rest, 3):g} s")
    return " ".join(parts)


def trigger_words(schedule: TaskDict) -> str:
    """``every 30 s`` or the cron as written with its zone: ``0 9 * * 1-5 (Europe/Berlin)``."""
    if schedule.get("cron"):
        return f"cron {schedule['cron']} ({schedule.get('timezone') or 'UTC'})"
    every = schedule.get("every")
    return f"every {span_words(every)}" if isinstance(every, (int, float)) else "no trigger"


def fire_time(value: Any, precise: bool = False, now: float | None = None) -> str:
    """A fire time in this kernel's local time: ``15:32:40`` today (``15:32:40.386`` when
    ``precise``: sub-second intervals), ``2026-12-01 09:00`` another day."""
    stamp = _parse_time(value)
    if stamp is None:
        return "—"
    at = datetime.fromtimestamp(stamp)
    today = datetime.fromtimestamp(now) if now is not None else datetime.now()
    if at.date() != today.date():
        return at.strftime("%Y-%m-%d %H:%M")
    return at.strftime("%H:%M:%S.%f")[:-3] if precise else at.strftime("%H:%M:%S")


def _precise(schedule: TaskDict) -> bool:
    every = schedule.get("every")
    return isinstance(every, (int, float)) and every != int(every)


def next_words(schedule: TaskDict) -> str:
    """``next 15:32:40 · 15:32:45 · 15:32:50``; why there is none otherwise."""
    if not schedule.get("enabled"):
        return "disabled: no run until enabled"
    runs = list(schedule.get("next_runs") or [])[:NEXT_SHOWN]
    if not runs:
        return "no fire time left (past its end)"
    precise = _precise(schedule)
    return "next " + " · ".join(fire_time(r, precise) for r in runs)


def run_state(schedule: TaskDict, known: dict[str, str]) -> str | None:
    """The last run's state: the schedule's JSON says it as of the firing, the run's own
    task messages say it since (they may arrive in either order: an ended state wins)."""
    last = schedule.get("last_run") or {}
    run_id = last.get("id")
    if not run_id:
        return None
    mine, theirs = known.get(run_id), last.get("state")
    if theirs in TERMINAL or mine is None:
        return str(theirs)
    return mine


def _state_html(state: str | None) -> str:
    if state is None:
        return "<span style='opacity:0.7'>no run yet</span>"
    color = STATE_COLOR.get(state, "#777")
    return f"<span style='color:{color};font-weight:600'>{html.escape(state)}</span>"


def toggle(client: Client, schedule_id: str, enable: bool,
           done: Callable[[TaskDict | None, str | None], None]) -> None:
    """``PATCH enabled`` in the events thread's executor (not the shell thread a click
    arrives on), then ``done(schedule, None)`` or ``done(None, error message)``."""
    def patch() -> None:
        try:
            reply = client.patch_schedule(schedule_id, enabled=enable)
        except Exception as exc:  # shown on the widget: never printed from a thread
            done(None, str(exc) or type(exc).__name__)
            return
        done(reply, None)

    client.events.call_soon(patch)


class ScheduleHandle:
    """``h.id``, ``h.enabled``, ``h.next_runs``, ``h.last_run``, ``h.runs()``,
    ``h.disable()``, ``h.enable()``, ``h.delete()``; displayed, it is its widget."""

    def __init__(self, schedule: TaskDict, client: Client, note: str = "",
                 count_runs: bool = True) -> None:
        self.client = client
        self.schedule: TaskDict = dict(schedule)
        """The server's latest JSON of the schedule (kept current by the events thread)."""
        self.id: str = str(schedule["id"])
        self.note = note
        """What the widget says of the runs' inputs and outputs."""
        self.deleted = False
        self.error = ""
        """The last failed request of a widget's button (shown on the widget)."""
        self._lock = threading.RLock()
        self._runs: dict[str, str] = {}
        """This schedule's runs seen (id -> latest state), from REST and task messages."""
        self._listeners: list[Callable[[], None]] = []
        self._widget: ScheduleWidget | None = None
        self._shown_in: Any = None
        self._unwatch = [client.watch_schedules(self._on_schedule), client.watch_all(self._on_task)]
        if count_runs:  # runs made before this handle listened (none for a new schedule)
            client.events.call_soon(self._load_runs)

    # -- the record ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.schedule.get("name") or self.schedule.get("kind") or "")

    @property
    def enabled(self) -> bool:
        return bool(self.schedule.get("enabled"))

    @property
    def next_runs(self) -> list[datetime]:
        """The next fire times (up to five, local time zone-aware), none while disabled."""
        if not self.enabled:
            return []
        stamps = (_parse_time(r) for r in self.schedule.get("next_runs") or [])
        return [datetime.fromtimestamp(s).astimezone() for s in stamps if s is not None]

    @property
    def last_run(self) -> TaskDict | None:
        """``{"id", "state", "started_at"}`` of the latest run, or None."""
        last = self.schedule.get("last_run")
        if not last:
            return None
        with self._lock:
            return {**last, "state": run_state(self.schedule, self._runs)}

    @property
    def run_count(self) -> int:
        """Runs seen so far (those pruned from the server's history before this handle
        was made are not counted)."""
        with self._lock:
            return len(self._runs)

    def runs(self, limit: int | None = None) -> list[TaskDict]:
        """The tasks this schedule made, newest first (``GET tasks?schedule_id=``);
        ``bgtasks_ext.attach(run["id"]).result()`` is a run's result."""
        return self.client.schedule_runs(self.id, limit)

    # -- acting -------------------------------------------------------------------------
    def disable(self) -> ScheduleHandle:
        """Stop firing (at once: a fire time not started yet does not start)."""
        self._set(self.client.patch_schedule(self.id, enabled=False))
        return self

    def enable(self) -> ScheduleHandle:
        """Fire again, from the next fire time after now (missed ones do not run)."""
        self._set(self.client.patch_schedule(self.id, enabled=True))
        return self

    def delete(self) -> None:
        """Remove the schedule; its past runs stay in history."""
        self.client.delete_schedule(self.id)
        self._gone()

    def refresh(self) -> ScheduleHandle:
        self._set(self.client.get_schedule(self.id))
        return self

    def toggle(self) -> None:
        """Enable or disable from a widget's button (see :func:`toggle`)."""
        def done(reply: TaskDict | None, error: str | None) -> None:
            self.error = "" if error is None else f"could not change it: {error}"
            if reply is not None:
                self._set(reply)
            else:
                self._changed()

        toggle(self.client, self.id, not self.enabled, done)

    # -- events (in the events thread) ----------------------------------------------------
    def _on_schedule(self, change: str, schedule: TaskDict) -> None:
        if schedule.get("id") != self.id:
            return
        if change == "deleted":
            self._gone()
        else:
            self._set(schedule)

    def _on_task(self, task: TaskDict) -> None:
        if task.get("schedule_id") != self.id:
            return
        self._note_run(task)
        self._changed()

    def _note_run(self, task: TaskDict) -> None:
        with self._lock:
            prev = self._runs.get(task["id"])
            if prev not in TERMINAL or task.get("state") in TERMINAL:
                self._runs[task["id"]] = str(task.get("state"))

    def _load_runs(self) -> None:
        for task in self.runs():
            self._note_run(task)
        self._changed()

    def _set(self, schedule: TaskDict) -> None:
        with self._lock:
            self.schedule = dict(schedule)
        self._changed()

    def _gone(self) -> None:
        with self._lock:
            self.deleted = True
            unwatch, self._unwatch = self._unwatch, []
        for stop in unwatch:
            stop()
        self._changed()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on every change (in the thread that saw it)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # noqa: S110 - a view must not stop the others
                pass

    # -- display ------------------------------------------------------------------------
    @property
    def widget(self) -> ScheduleWidget:
        if self._widget is None:
            self._widget = ScheduleWidget(self)
        return self._widget

    def mark_shown(self) -> None:
        """The widget was shown by this cell: its display of the handle shows nothing more."""
        from .handle import _cell_number

        self._shown_in = _cell_number()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from .handle import _cell_number

        shown, self._shown_in = self._shown_in, None
        if shown is not None and shown == _cell_number():
            return
        display(self.widget)

    def __repr__(self) -> str:
        state = "deleted" if self.deleted else "enabled" if self.enabled else "disabled"
        return f"<ScheduleHandle {self.id} {self.name!r} {trigger_words(self.schedule)} {state}>"


class ScheduleWidget(w.VBox):  # type: ignore[misc]
    """Name and id, the trigger in words, the next fire times, the last run's state and
    the runs count, an Enable/Disable button, and what becomes of the runs' outputs."""

    def __init__(self, handle: ScheduleHandle, **kwargs: Any) -> None:
        self.handle = handle
        self._render_lock = threading.RLock()
        self.title = w.HTML()
        self.trigger = w.Label()
        self.next = w.Label()
        self.last = w.HTML()
        self.toggle_button = w.Button(layout=w.Layout(width="auto"))
        self.toggle_button.on_click(self._on_toggle)
        self.message = w.Label()
        self.note = w.HTML()
        head = w.HBox([self.title, self.toggle_button],
                      layout=w.Layout(justify_content="space-between", align_items="center"))
        super().__init__([head, self.trigger, self.next, self.last, self.message, self.note], **kwargs)
        handle.add_listener(self.render)
        self.render()

    def render(self) -> None:
        handle = self.handle
        with self._render_lock:
            schedule = handle.schedule
            self.title.value = (f"<b>{html.escape(handle.name)}</b> <span style='opacity:0.7'>schedule"
                                f"</span> <code style='font-size:85%;user-select:all'>"
                                f"{html.escape(handle.id)}</code>")
            self.trigger.value = trigger_words(schedule)
            if handle.deleted:
                _say(self.next, "deleted: no more runs")
            else:
                _say(self.next, next_words(schedule))
            last = handle.last_run
            runs = handle.run_count
            self.last.value = (f"last run: {_state_html(None if last is None else last['state'])}"
                               f" · {runs} run{'' if runs == 1 else 's'}")
            enabled = handle.enabled and not handle.deleted
            self.toggle_button.description = "Disable" if enabled else "Enable"
            self.toggle_button.icon = "pause" if enabled else "play"
            self.toggle_button.button_style = "warning" if enabled else "success"
            self.toggle_button.disabled = handle.deleted
            _say(self.message, handle.error)
            self.note.value = f"<span style='opacity:0.7;font-size:90%'>{html.escape(handle.note)}</span>"
            self.note.layout.display = "" if handle.note else "none"

    def _on_toggle(self, _button: Any) -> None:
        self.toggle_button.disabled = True  # until the reply renders it again
        self.handle.toggle()


class SchedulesTable(w.VBox):  # type: ignore[misc]
    """Every schedule on the server, live: one row each with its name, trigger, next fire
    time, last run's state and an Enable/Disable button. Rows come and go with the
    server's ``schedule`` messages."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.RLock()
        self.rows: dict[str, tuple[w.HBox, ScheduleHandle]] = {}
        self.empty = w.Label("no schedules: %%bgtask --every S, or bgtasks_ext.schedule(fn, every=S)")
        super().__init__([self.empty])
        for schedule in client.list_schedules():
            self._add(schedule)
        self._unwatch = client.watch_schedules(self._on_schedule)

    def _on_schedule(self, change: str, schedule: TaskDict) -> None:
        if change != "deleted" and schedule.get("id") not in self.rows:
            self._add(schedule)  # the row's handle follows it from here on

    def _add(self, schedule: TaskDict) -> None:
        with self._lock:
            if schedule["id"] in self.rows:
                return
            handle = ScheduleHandle(schedule, self.client, count_runs=False)
            name = w.HTML(layout=w.Layout(width="30%"))
            trigger = w.Label(layout=w.Layout(width="20%"))
            nxt = w.Label(layout=w.Layout(width="25%"))
            last = w.HTML(layout=w.Layout(width="12%"))
            button = w.Button(layout=w.Layout(width="auto"))

            def click(_b: Any) -> None:
                button.disabled = True  # until the reply renders it again
                handle.toggle()

            button.on_click(click)
            box = w.HBox([name, trigger, nxt, last, button])

            def render() -> None:
                sched = handle.schedule
                name.value = (f"<b>{html.escape(handle.name)}</b> <code style='font-size:85%;"
                              f"user-select:all'>{html.escape(handle.id)}</code>")
                trigger.value = trigger_words(sched)
                nxt.value = "deleted" if handle.deleted else next_words(sched)
                run = handle.last_run
                last.value = _state_html(None if run is None else run["state"])
                on = handle.enabled and not handle.deleted
                button.description = "Disable" if on else "Enable"
                button.button_style = "warning" if on else "success"
                button.disabled = handle.deleted
                button.tooltip = handle.error or ""
                if handle.deleted:
                    self._remove(handle.id)

            handle.add_listener(render)
            render()
            self.rows[handle.id] = (box, handle)
            self._show()

    def _remove(self, schedule_id: str) -> None:
        with self._lock:
            if self.rows.pop(schedule_id, None) is not None:
                self._show()

    def _show(self) -> None:
        boxes = [box for box, _h in self.rows.values()]
        self.children = tuple(boxes) if boxes else (self.empty,)
