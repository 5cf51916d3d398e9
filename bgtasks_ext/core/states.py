"""Task states, their categories and the one table of allowed transitions.

Nothing outside :func:`advance` decides whether a state change is legal: the engine
calls it for every change it makes, so the table below is the whole truth.
"""

from __future__ import annotations

from enum import Enum

from .errors import InvalidTransition


class State(str, Enum):
    """Where a task is in its life. The last three are terminal, and terminal is final."""

    PENDING = "pending"
    """Queued, or waiting for its ``run_on`` time or a retry back-off."""
    RUNNING = "running"
    """An executor has started it."""
    CANCELLING = "cancelling"
    """Cancel was asked for while it ran; the executor is stopping it."""
    FINISHED = "finished"
    """Returned normally. Terminal."""
    FAILED = "failed"
    """Raised, timed out, lost its worker, or was interrupted by a server stop. Terminal."""
    CANCELLED = "cancelled"
    """Stopped on request before it could finish. Terminal."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def category(self) -> Category:
        return _CATEGORY[self]


class Category(str, Enum):
    """The panel's tabs: each state belongs to exactly one."""

    PENDING = "pending"
    """Not done yet: pending, running or cancelling."""
    FAILED = "failed"
    """Ended without a result: failed or cancelled."""
    FINISHED = "finished"
    """Ended with a result."""

    @property
    def states(self) -> frozenset[State]:
        return frozenset(s for s, c in _CATEGORY.items() if c is self)


_TERMINAL = frozenset({State.FINISHED, State.FAILED, State.CANCELLED})
TERMINAL_NAMES = frozenset(s.value for s in _TERMINAL)
"""The terminal states as they are on the wire, for clients that hold JSON records."""

_CATEGORY = {
    State.PENDING: Category.PENDING,
    State.RUNNING: Category.PENDING,
    State.CANCELLING: Category.PENDING,
    State.FINISHED: Category.FINISHED,
    State.FAILED: Category.FAILED,
    State.CANCELLED: Category.FAILED,
}

TRANSITIONS: dict[State, frozenset[State]] = {
    # A pending task starts, is cancelled before it starts, or fails without starting
    # (its input cannot be loaded, its kind vanished).
    State.PENDING: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    # A running task ends, is asked to stop, or goes back to pending for a retry
    # (or after a server crash, when it has retries left).
    State.RUNNING: frozenset(
        {State.FINISHED, State.FAILED, State.CANCELLING, State.CANCELLED, State.PENDING}
    ),
    # A task being stopped ends cancelled (also when it returns early because it saw
    # cancelled()), or failed: it timed out, or raised an error of its own meanwhile.
    # A timed-out attempt with retries left goes back to pending.
    State.CANCELLING: frozenset({State.CANCELLED, State.FAILED, State.PENDING}),
    State.FINISHED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}


def advance(current: State, new: State) -> State:
    """Return ``new`` if ``current -> new`` is allowed, else raise :class:`InvalidTransition`."""
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(current.value, new.value)
    return new
