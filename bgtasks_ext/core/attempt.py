"""The one attempt runner: run a task's code once and say how it ended.

Every place that runs task code — the thread executor, a process worker, a kernel
running a task of the ``kernel`` executor, a Dask worker — calls :func:`run_attempt`,
so an attempt ends the same way everywhere:

- the code returns: its value is pickled (:func:`~.results.dump_result`) and
  previewed -> ``finished``; a value that cannot be pickled -> ``failed`` with reason
  ``result``;
- it raises :class:`TaskCancelled` (a cancel request seen by ``progress()``, or an
  asynchronous cancel) -> ``cancelled``, also when that lands after the code returned;
- it raises anything else, ``SystemExit`` and ``KeyboardInterrupt`` included (a task
  must not end the thread or process that runs it) -> ``failed`` with its traceback,
  starting at the task's own code.

Where the code runs decides only what surrounds the call: ``window`` is a context
manager entered just around the code itself (not around pickling the result), for
the runners that may interrupt the code asynchronously (a SIGTERM in a worker, an
asynchronous exception in a thread) and must stop doing so once it has returned.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable

from . import output, tqdm_bridge
from .context import TaskContext, bind
from .errors import TaskCancelled
from .models import TaskError
from .ports import Outcome, OutcomeStatus
from .registry import kind_for_ref
from .results import dump_result, error_from, preview
from .tracebacks import user_frames

RESULT = "result"
"""``TaskError.reason`` of a task whose return value could not be pickled."""
TOO_LARGE = "result_too_large"
"""``TaskError.reason`` of a task whose pickled result is above ``max_result_bytes``."""

_CANCELLED = Outcome(OutcomeStatus.CANCELLED)
_FINISHED_NONE = Outcome(OutcomeStatus.FINISHED, result=dump_result(None), preview=None)


def run_attempt(
    ctx: TaskContext,
    fn: Callable[..., Any],
    *args: Any,
    window: AbstractContextManager[Any] | None = None,
    max_result_bytes: int | None = None,
) -> Outcome:
    """Call ``fn(*args)`` with ``ctx`` bound to this thread (so ``progress()`` and
    ``print()`` reach the task) and return the attempt's :class:`Outcome`. Never raises
    (but for what Python cannot catch). A pickled result above ``max_result_bytes``
    fails the attempt (reason ``result_too_large``) where it ran: it never travels."""
    output.install()  # again each time: a test runner or a kernel may swap sys.stdout
    tqdm_bridge.install()  # once per process: tqdm bars in tasks report progress
    prev = bind(ctx)
    try:
        try:
            with window if window is not None else nullcontext():
                value = fn(*args)
        except TaskCancelled as exc:
            _flush(ctx)
            # A kind may say what its stopped run left (bgtasks_data: a notebook job's copy).
            data = getattr(exc, "bgtasks_data", None)
            if isinstance(data, dict):
                return Outcome(OutcomeStatus.CANCELLED, error=TaskError(
                    "TaskCancelled", str(exc) or "cancelled", "", data=data))
            return _CANCELLED
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: see the module doc
            _flush(ctx)
            return Outcome(OutcomeStatus.FAILED, error=_error(exc))
        _flush(ctx)
        return finished(value, max_result_bytes)
    except TaskCancelled:  # an asynchronous cancel that landed after the code returned
        return _CANCELLED
    finally:
        bind(prev)


def finished(value: Any, max_result_bytes: int | None = None) -> Outcome:
    """The outcome of code that returned ``value``: pickled and previewed, or failed with
    reason ``result`` when it cannot be pickled, ``result_too_large`` when it is bigger
    than ``max_result_bytes``."""
    if value is None:
        return _FINISHED_NONE  # most tasks return nothing: no pickling, no new record
    try:
        data = dump_result(value)
    except TaskCancelled:
        raise
    except BaseException as exc:  # noqa: BLE001 - a __reduce__ may raise anything
        return Outcome(OutcomeStatus.FAILED, error=TaskError(
            type(exc).__qualname__,
            f"the task returned a {type(value).__qualname__} that cannot be pickled: {exc}",
            "",
            reason=RESULT,
        ))
    if max_result_bytes is not None and len(data) > max_result_bytes:
        return too_large(len(data), max_result_bytes, type(value).__qualname__)
    return Outcome(OutcomeStatus.FINISHED, result=data, preview=preview(value))


def too_large(size: int, limit: int, what: str = "result") -> Outcome:
    """The outcome of an attempt whose pickled result is above the limit."""
    return Outcome(OutcomeStatus.FAILED, error=TaskError(
        "ResultTooLarge",
        f"the task returned a {what} of {_mib(size)} pickled, above the largest result kept "
        f"(max_result_bytes = {_mib(limit)}): return less, or write it to a file and return its path",
        "",
        reason=TOO_LARGE,
    ))


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _flush(ctx: TaskContext) -> None:
    """Send the last progress (and a bar's last frame); a cancel that arrives meanwhile
    changes nothing now."""
    try:
        ctx.finish()
    except TaskCancelled:
        pass


def run_kind(ref: str, ctx: TaskContext, cwd: str | None = None) -> Any:
    """Import the kind at ``ref`` (once per process) and run it with ``ctx``; in
    ``cwd`` when given (worker processes only: a directory belongs to a whole process).
    The usual ``fn`` of :func:`run_attempt`, so that a kind that cannot be imported
    fails its attempt like any other error."""
    if cwd:
        os.chdir(cwd)
    return kind_for_ref(ref).run(ctx)


def _error(exc: BaseException) -> TaskError:
    # The traceback starts where the task's code does, not in this runner, the kind
    # registry or the code kind's cell runner (tracebacks.user_frames).
    exc.__traceback__ = user_frames(exc.__traceback__)
    try:
        return error_from(exc)
    except Exception as err:  # noqa: BLE001 - a broken __str__ must not lose the failure
        return TaskError(type(exc).__qualname__, f"<unprintable: {err}>", "")
