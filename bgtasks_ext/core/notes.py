"""A task's note: a line the notebook that launched it says about it.

The kernel sets it once it has landed a cell's outputs (``outputs set: a, b``) or when a
re-run cell superseded the task, so that views that read only the server (the browser's
cell view, the panel) can say it too. It is free text from a client, copied into every
listing and event of the task, so it is bounded and kept printable here, for every
caller alike (REST, kernels, Python): :func:`check_note` is the one rule, used by
:meth:`.engine.Engine.set_note` and by the server's request parser (which only names the
field earlier).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidInput

NOTE_LIMIT = 1000
"""Characters a note may have."""

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters other than tab and newline (C0, DEL, C1), and lone surrogates: a
note is shown as text in a cell and a panel row, where these only garble it (a carriage
return or an escape sequence redraws the line) or cannot be stored as UTF-8."""


def note_problem(note: Any) -> str | None:
    """Why ``note`` cannot be a note (``None`` when it can): not a string, too long, or
    holding a control character other than tab and newline."""
    if note is None:
        return None
    if not isinstance(note, str):
        return "must be a string or null"
    if len(note) > NOTE_LIMIT:
        return f"must be at most {NOTE_LIMIT} characters, not {len(note)}"
    bad = _FORBIDDEN.search(note)
    if bad is not None:
        return (f"holds the control character {bad.group()!r} at position {bad.start()}: "
                "only printable text, tabs and newlines")
    return None


def check_note(note: Any) -> str | None:
    """The note to store: ``note`` itself, ``None`` for ``None`` or ``""`` (cleared), or
    :class:`InvalidInput` naming ``note``."""
    problem = note_problem(note)
    if problem is not None:
        raise InvalidInput("note", problem)
    return note or None
