"""What a terminal would keep of a task's output: a line redrawn with ``\\r`` keeps its last frame.

Progress bars (tqdm's, pip's, curl's, a hand-written ``print(f"\\r{i}", end="")``) redraw one
line with a carriage return many times a second; a log that kept every frame would fill with
them. A log is append-only (read by offset, streamed live), so what was sent cannot be taken
back. Hence, per line:

- text of a line that has no ``\\r`` (yet) passes through at once, so plain ``print`` output
  streams live;
- from the first ``\\r`` in a line on, the rest of that line is held and folded as a terminal
  would fold it (``\\r`` goes back to the start of the held part, later text overwrites), and
  sent when the line ends (``\\n``) or the task does (:meth:`TermLines.end`): one final frame,
  with the padding spaces bars write to blank a longer previous frame stripped.

A line's text sent before its first ``\\r`` stays in front of the final frame: it was already
sent. Only ``\\r`` and ``\\n`` are interpreted; escape sequences pass through as text.
"""

from __future__ import annotations

import threading


class TermLines:
    """One task's output, folded line by line (thread-safe: a worker may also feed what it
    reads from file descriptors 1 and 2)."""

    __slots__ = ("_held", "_col", "_lock", "_ended")

    def __init__(self) -> None:
        self._held: str | None = None
        """The current line's part since its first ``\\r``, as a terminal shows it; ``None``
        while the line has no ``\\r``."""
        self._col = 0
        """Where the next character lands in ``_held``."""
        self._lock = threading.Lock()
        self._ended = False

    def feed(self, text: str) -> str:
        """Take ``text`` written by the task; return what of it can go to the log now."""
        with self._lock:
            if self._ended or (self._held is None and "\r" not in text):
                return text  # the common case: nothing to fold
            out: list[str] = []
            pieces = text.split("\n")
            last = len(pieces) - 1
            for i, piece in enumerate(pieces):
                if self._held is None and "\r" not in piece:
                    out.append(piece)
                else:
                    if self._held is None:
                        self._held, self._col = "", 0
                    self._fold(piece)
                if i < last:  # the line ends here
                    if self._held is not None:
                        out.append(self._held.rstrip(" "))
                        self._held, self._col = None, 0
                    out.append("\n")
            return "".join(out)

    def end(self) -> str:
        """The task's output has ended: what is still held (its own line), and from now on
        text passes through unchanged (a worker may drain late output after the end)."""
        with self._lock:
            self._ended = True
            held, self._held, self._col = self._held, None, 0
        rest = (held or "").rstrip(" ")
        return rest + "\n" if rest else ""

    def _fold(self, piece: str) -> None:
        """Write ``piece`` (no ``\\n`` in it) over the held line."""
        held, col = self._held or "", self._col
        for j, seg in enumerate(piece.split("\r")):
            if j:
                col = 0
            if seg:
                end = col + len(seg)
                held = held[:col] + seg + held[end:]
                col = end
        self._held, self._col = held, col
