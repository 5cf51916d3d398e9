"""How any thread hands a command to the process executor's loop thread."""

from __future__ import annotations

import os
from collections import deque
from typing import Any


class Mailbox:
    """Commands from any thread to the loop: a deque, and a pipe to wake it.

    A byte is written only when no wake-up is pending, so a burst of submits costs
    one ``write``, not one each. The order of the steps is what makes that safe:
    :meth:`post` appends, then writes unless a wake-up is pending; :meth:`take`
    reads the pipe, *then* clears the flag, *then* drains the deque. A command
    appended before the flag was cleared is drained now; one appended after finds
    the flag clear and writes a byte that no read has consumed yet, so the loop
    wakes again. (Clearing before the read would let the read swallow that byte and
    leave the flag set with an empty pipe: the next command would never be seen.)
    """

    def __init__(self) -> None:
        self.commands: deque[tuple[Any, ...]] = deque()
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._pending = False

    def post(self, *cmd: Any) -> None:
        self.commands.append(cmd)
        if not self._pending:
            self._pending = True
            try:
                os.write(self._write_fd, b"\0")
            except OSError:  # full: the loop has bytes to wake it already
                pass

    def take(self) -> list[tuple[Any, ...]]:
        """Called by the loop when the pipe is readable."""
        try:
            while len(os.read(self.read_fd, 4096)) == 4096:
                pass
        except BlockingIOError:
            pass
        self._pending = False
        out = []
        while self.commands:
            out.append(self.commands.popleft())
        return out

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self._write_fd)
