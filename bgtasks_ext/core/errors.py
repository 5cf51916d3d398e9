"""One error tree, rooted in :class:`BgTasksError`.

Each error carries its own message and the HTTP status it maps to, so the server turns
any of them into a response in one place and never answers a bad request with a 500.
"""

from __future__ import annotations


class BgTasksError(Exception):
    """Root of every error this package raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BgTasksError):
    """A value given by a caller is wrong. ``field`` names it."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class UnknownKind(InvalidInput):
    """No kind is registered under that name."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__("kind", f"unknown kind {name!r}{hint}")
        self.name = name


class NotFound(BgTasksError):
    """No task or schedule has that id."""

    status = 404

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"no {what} with id {ident!r}")
        self.what = what
        self.ident = ident


class InvalidTransition(BgTasksError):
    """A state change that the transition table does not allow."""

    status = 409

    def __init__(self, current: str, new: str) -> None:
        super().__init__(f"a {current} task cannot become {new}")
        self.current = current
        self.new = new


class Conflict(BgTasksError):
    """The request is well formed but clashes with the task's state."""

    status = 409


class StoreError(BgTasksError):
    """The store could not write (disk full, a value too big for it): nothing of the
    request was kept."""

    status = 503


class EngineClosed(BgTasksError):
    """The engine is not running (not started yet, or stopped)."""

    status = 503

    def __init__(self) -> None:
        super().__init__("the task engine is not running")


class TaskCancelled(BaseException):
    """Raised inside a task by ``progress()``/``track()`` once cancel was asked for.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a task's broad
    ``except Exception`` does not swallow its own cancellation. ``handle.result()``
    raises it too for a cancelled task.
    """
