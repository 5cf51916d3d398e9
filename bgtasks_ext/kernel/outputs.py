"""What a finished ``%%bgtask`` cell brings back, and what its widget says about it.

:class:`CellOutputs` is the hook a handle calls once when its task ends (in the events
thread, or at once for a task that had already ended). It loads the task's
``CodeResult`` and hands the output names to the kernel's :class:`~.landing.Landing`,
which sets them between cells; the widget's note line tells the user what happened:
``outputs set: a, b``, or why nothing was set (superseded, not a code task, ran in a
kernel's own namespace, the server no longer keeps the result...).

The same hook serves the magic (the kernel that launched the cell) and ``attach`` (any
kernel, e.g. after a restart): a result says by itself that it came from a cell.
"""

from __future__ import annotations

from typing import Any

from ..kinds.code import CodeResult
from .client import TaskDict, TaskNotFound
from .landing import Landing
from .notes import notes

def outputs_of(result: Any) -> dict[str, Any]:
    """The output values a loaded result brings (``{}`` for anything but a cell's)."""
    return dict(result.outputs) if isinstance(result, CodeResult) else {}


def is_cell(result: Any) -> bool:
    """Whether a loaded result came from a ``%%bgtask`` cell (results of older versions
    say nothing: taken as not)."""
    return isinstance(result, CodeResult) and bool(getattr(result, "is_cell", False))


def value_of(result: Any) -> Any:
    """What ``h.result()`` returns for a loaded result: a ``%%bgtask`` cell's outputs as
    ``{name: value}``; the value of a call (``submit``) or an expression (``%bgtask``);
    any other kind's result as it is."""
    if is_cell(result):
        return outputs_of(result)
    return result.value if isinstance(result, CodeResult) else result


class CellOutputs:
    """A handle's end hook: queue the cell's outputs for landing, keep the note true.

    ``attached``: made by ``attach`` rather than by the launching magic, so the task may
    be anything (another kind, a call, a kernel-executor cell that ran elsewhere) and
    the note says why nothing is set. ``names``: given for a kernel-executor cell, its
    outputs, which it sets itself as it runs in this very namespace (so they are not
    pickled back: the objects such a cell makes often cannot be).
    """

    def __init__(self, landing: Landing, *, attached: bool = False,
                 names: list[str] | None = None, wanted: list[str] | None = None) -> None:
        self.landing = landing
        self.attached = attached
        self.names = names
        self.wanted = wanted or []
        """Names ``--out`` asked for: the note says which the cell never assigned."""
        self.values: dict[str, Any] | None = None
        """A kernel-executor cell's outputs as they were when it ended (its ``result()``)."""
        self.widget: Any = None
        self.superseded = False
        """Set when a re-run of the cell replaced this task: its outputs never land."""
        self._prefix: list[str] = []
        self._status = ""
        self._share = True

    # -- the note ----------------------------------------------------------------------
    def show(self, widget: Any) -> None:
        """Write the note on ``widget`` from now on (and what it says already)."""
        self.widget = widget
        self._render()

    def add_note(self, text: str) -> None:
        """A note that stays in front of the status (e.g. ``superseded task ...``)."""
        self._prefix.append(text)
        self._render()

    def _say(self, status: str, share: bool = True) -> None:
        """``share=False``: a note only for this kernel's own widget (what an ``attach``
        says about a task that was never a cell), not written on the task's record."""
        self._status = status
        self._share = share
        self._render()

    def _render(self) -> None:
        text = " · ".join([*self._prefix, self._status] if self._status else self._prefix)
        if self.widget is not None and text:
            self.widget.set_note(text)
            if self._share:  # the browser's view of the cell reads it from the server
                notes.post(self.widget.handle, text)

    # -- the task's end ----------------------------------------------------------------
    def __call__(self, handle: Any, task: TaskDict) -> None:
        if self.superseded or task.get("state") != "finished":
            return  # superseded by a re-run of its cell; or the widget shows the error
        if self.landing.superseded(handle.id):
            return
        if task.get("kind") != "code":
            if self.attached:
                self._say(f"no outputs to set: a {task.get('kind')!r} task, not a %%bgtask cell",
                          share=False)
            return
        if task.get("executor") == "kernel":
            self._kernel_executor(handle)
            return
        try:
            result = handle.result_object()
        except TaskNotFound:
            self._say("outputs not set: the server no longer keeps this task's result")
            return
        except Exception as exc:
            self._say(f"outputs not set: cannot load the result ({type(exc).__name__}: {exc})")
            return
        values = outputs_of(result)
        if not values:
            if self.attached and not is_cell(result):
                self._say("no outputs to set: not a %%bgtask cell (h.result() is its value)",
                          share=False)
            elif self.wanted:
                self._say(self._unassigned(values))
            return
        if self.landing.running:
            self._say(f"outputs land when the running cell ends: {', '.join(sorted(values))}")
        self.landing.put(handle.id, values, self._landed)

    def _kernel_executor(self, handle: Any) -> None:
        if self.attached:
            self._say("outputs not copied: a kernel-executor cell sets them in the kernel it ran in",
                      share=False)
            return
        if self.names is None:
            return  # an expression or a call: its value is its result
        user_ns = self.landing.shell.user_ns
        self.values = {n: user_ns[n] for n in self.names if n in user_ns}
        self._say(f"outputs set: {', '.join(sorted(self.values))}" if self.values else "")

    def _landed(self, names: list[str]) -> None:
        parts = [f"outputs set: {', '.join(names)}"] if names else []
        missing = self._unassigned(dict.fromkeys(names))
        self._say(" · ".join([*parts, missing] if missing else parts))

    def _unassigned(self, got: dict[str, Any]) -> str:
        missing = [n for n in self.wanted if n not in got]
        return f"--out {', '.join(missing)}: not assigned by the cell" if missing else ""
