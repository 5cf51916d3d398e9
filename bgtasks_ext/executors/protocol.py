"""The wire format between the server and its worker processes.

The server never unpickles anything that came from a worker (user data stays opaque
bytes in the server), so control messages are JSON. A message that carries user data
(a job's input payload, a task's pickled result) carries it as a raw byte frame next
to its JSON, made and loaded only inside the worker.

One message on the wire::

    flags: u8 | json_len: u32 | data_len: u64 | json bytes | data bytes

``flags & HAS_DATA`` tells an empty data frame (``b""``) from no data at all
(``None``). Both directions use the same framing over one stream socket.

Messages (``op`` names the kind)::

    server → worker  run      {task_id, ref, params, settings, attempt, cwd, has_payload} + payload
                     warm     {ref, settings}   (call ``ref(settings)`` once, in the background)
                     cancel   {task_id}
                     shutdown {}
    worker → server  ready    {pid, python, version}
                     progress {task_id, current, total, message}
                     log      {task_id, text}           (coalesced in the worker)
                     done     {task_id, status, preview, error, has_result} + result
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO, Dict, Optional, Tuple

VERSION = 3
"""Sent in ``ready``: a worker under another interpreter may have another
``bgtasks_ext`` installed, and the server must not guess at its messages."""

_PREFIX = struct.Struct("!BIQ")
PREFIX_SIZE = _PREFIX.size
HAS_DATA = 0x01

_INLINE_DATA = 64 * 1024
"""Data frames smaller than this are joined to their header so a message is one
``send``; bigger ones are sent separately to avoid copying them."""

Message = Dict[str, Any]
Frame = Tuple[Message, Optional[bytes]]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed message."""


def encode(msg: Message, data: bytes | None = None) -> list[bytes]:
    """The byte chunks of one message, ready for ``sendall`` in order."""
    body = _dumps(msg).encode()
    if data is None:
        return [_PREFIX.pack(0, len(body), 0) + body]
    head = _PREFIX.pack(HAS_DATA, len(body), len(data)) + body
    if len(data) < _INLINE_DATA:
        return [head + data]
    return [head, data]


def send(sock: Any, msg: Message, data: bytes | None = None) -> None:
    """Write one message to a blocking socket (callers serialise concurrent senders)."""
    for chunk in encode(msg, data):
        sock.sendall(chunk)


def read_message(stream: BinaryIO) -> Frame | None:
    """Read one message from a buffered binary stream; ``None`` at a clean EOF."""
    prefix = stream.read(PREFIX_SIZE)
    if not prefix:
        return None
    if len(prefix) < PREFIX_SIZE:
        raise ProtocolError("connection closed inside a message header")
    flags, json_len, data_len = _PREFIX.unpack(prefix)
    body = stream.read(json_len)
    data = stream.read(data_len) if flags & HAS_DATA else None
    if len(body) < json_len or (data is not None and len(data) < data_len):
        raise ProtocolError("connection closed inside a message")
    return _decode(body), data


def _decode(body: bytes | memoryview) -> Message:
    try:
        msg = _loads(bytes(body))
    except ValueError as exc:
        raise ProtocolError(f"bad message: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise ProtocolError("a message must be a JSON object with an 'op'")
    return msg


class MessageReader:
    """Incremental decoder for a non-blocking reader: feed it whatever ``recv``
    returned, get back every message completed so far (a single ``recv`` often holds
    many small messages, and a big result spans many ``recv`` calls)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Frame]:
        buf = self._buf
        buf += chunk
        out: list[Frame] = []
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= PREFIX_SIZE:
                flags, json_len, data_len = _PREFIX.unpack_from(buf, pos)
                if not flags & HAS_DATA:
                    data_len = 0
                start = pos + PREFIX_SIZE
                stop = start + json_len + data_len
                if stop > end:
                    break
                msg = _decode(view[start : start + json_len])
                data = bytes(view[start + json_len : stop]) if flags & HAS_DATA else None
                out.append((msg, data))
                pos = stop
        finally:
            view.release()
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still held."""
        return len(self._buf)


# -- message builders: the one place that spells each message -------------------------
def run_msg(task_id: str, ref: str, params: Any, attempt: int, cwd: str | None, has_payload: bool,
            max_result_bytes: int | None = None, memory_limit: int | None = None,
            settings: Any = None) -> Message:
    return {
        "op": "run", "task_id": task_id, "ref": ref, "params": params,
        "attempt": attempt, "cwd": cwd, "has_payload": has_payload,
        "max_result_bytes": max_result_bytes, "memory_limit": memory_limit,
        "settings": settings or None,
    }


def warm_msg(ref: str, settings: Any) -> Message:
    """Call ``ref(settings)`` once in the worker, on a background thread (a kind's warm-up)."""
    return {"op": "warm", "ref": ref, "settings": settings}


def cancel_msg(task_id: str) -> Message:
    return {"op": "cancel", "task_id": task_id}


SHUTDOWN: Message = {"op": "shutdown"}


def ready_msg(pid: int, python: str) -> Message:
    return {"op": "ready", "pid": pid, "python": python, "version": VERSION}


def progress_msg(task_id: str, current: float, total: float | None, message: str | None) -> Message:
    return {"op": "progress", "task_id": task_id, "current": current, "total": total, "message": message}


def log_msg(task_id: str, text: str) -> Message:
    return {"op": "log", "task_id": task_id, "text": text}


def done_msg(task_id: str, status: str, preview: Any = None, error: Any = None, has_result: bool = False,
             retire: bool = False) -> Message:
    """``retire``: the worker could not undo what the task changed in it; replace it."""
    return {
        "op": "done", "task_id": task_id, "status": status,
        "preview": preview, "error": error, "has_result": has_result, "retire": retire,
    }
