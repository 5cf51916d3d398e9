"""Turning a task's return value or exception into what the record shows."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import cloudpickle

from .models import TaskError
from .tracebacks import format_exception

PREVIEW_LIMIT = 4096
"""Largest JSON text kept as-is in ``result_preview``; anything bigger becomes a repr."""
REPR_LIMIT = 200


def preview(value: Any) -> Any:
    """The value itself when it is JSON-native and small, else a truncated ``repr``;
    an object with a ``__bgtask_preview__()`` method previews itself. Always strict JSON
    (no ``NaN``): it is served as it is."""
    custom = getattr(type(value), "__bgtask_preview__", None)
    if custom is not None:
        try:
            shown = custom(value)
            json.dumps(shown, allow_nan=False)  # it goes into strict JSON replies
            return shown
        except Exception:  # noqa: S110 - fall back to the generic preview below
            pass
    if value is None or isinstance(value, (bool, int, str)) or (
        isinstance(value, float) and math.isfinite(value)
    ):
        if not isinstance(value, str) or len(value) <= PREVIEW_LIMIT:
            return value
    else:
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            pass
        else:
            if len(text) <= PREVIEW_LIMIT and json.loads(text) == value:
                return value
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the task
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    if len(text) > REPR_LIMIT:
        text = text[: REPR_LIMIT - 1] + "…"
    return {"repr": text, "type": type(value).__qualname__}


def dump_result(value: Any) -> bytes:
    """Pickle a result: the standard pickler first (C, no set-up per call), cloudpickle
    for what it cannot do (lambdas, classes defined in ``__main__`` or a cell)."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def error_from(exc: BaseException, reason: str | None = None) -> TaskError:
    """A :class:`TaskError` with the exception's type, message and formatted traceback
    (notebook cells named as the notebook names them: :mod:`.tracebacks`).

    An exception that stands for an error raised elsewhere (a notebook job's failing
    cell, raised in its kernel) says so by attributes: ``bgtasks_type`` and
    ``bgtasks_traceback`` (strings) replace the Python exception's own, and
    ``bgtasks_data`` (a dict of JSON values) becomes :attr:`TaskError.data`."""
    kind = getattr(exc, "bgtasks_type", None)
    text = getattr(exc, "bgtasks_traceback", None)
    data = getattr(exc, "bgtasks_data", None)
    return TaskError(
        type=kind if isinstance(kind, str) and kind else type(exc).__qualname__,
        message=str(exc),
        traceback=text if isinstance(text, str) else format_exception(exc),
        reason=reason,
        data=_json_dict(data),
    )


def _json_dict(data: Any) -> dict[str, Any] | None:
    """``data`` when it is a dict that survives strict JSON (it is served as it is)."""
    if not isinstance(data, dict):
        return None
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        return None
    value: dict[str, Any] = json.loads(text)
    return value
