"""The body of ``POST tasks`` as it streams in: JSON, or the spec and raw payload bytes.

A ``code`` task's payload is the pickled cell with its inputs, and inputs can be
hundreds of megabytes. Inside JSON they would be base64 (a third bigger, encoded in the
kernel and decoded here), and a buffered body would be copied again by the parser on
the event loop. So a client may send ``multipart/form-data`` with two parts, ``spec``
(the JSON body) and ``payload`` (the raw bytes, any content type), parsed chunk by chunk
as they arrive (python-multipart's streaming parser): the payload is written once into
one buffer, and nothing on the loop walks the whole body. ``curl -F spec=@spec.json
-F payload=@job.pkl`` is such a request. Plain JSON bodies (the payload, if any, in
base64) are still accepted: they are collected here too and parsed by :mod:`.requests`.
"""

from __future__ import annotations

from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from tornado.httputil import _parse_header

from ..core.errors import InvalidInput

MULTIPART = "multipart/form-data"
PARTS = ("spec", "payload")
SPEC_LIMIT = 1 << 20
"""Bytes of JSON a spec may take (params included): a spec is not where data goes."""


class TaskUpload:
    """Collects one request body; :meth:`finish` gives ``(spec JSON, payload or None)``.

    Errors are :class:`InvalidInput` naming the part at fault, raised from
    :meth:`finish` (a ``data_received`` that raised would drop the connection instead
    of answering 400), so a bad upload is refused with a message, never half-stored.
    """

    def __init__(self, content_type: str) -> None:
        kind, params = _parse_header(content_type or "")
        self.multipart = kind.lower() == MULTIPART
        self._chunks: list[bytes] = []
        self._parts: dict[str, bytearray] = {}
        self._error: InvalidInput | None = None
        self._parser: MultipartParser | None = None
        self._name: str | None = None
        self._header: list[bytes] = []
        self._value: list[bytes] = []
        self._disposition = b""
        self._ended = False
        if self.multipart:
            boundary = params.get("boundary")
            if not boundary:
                self._error = InvalidInput("body", "a multipart/form-data body needs a boundary")
                return
            self._parser = MultipartParser(boundary, {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda d, s, e: self._header.append(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.append(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_end": self._end,
            })

    # -- the parser's callbacks ----------------------------------------------------
    def _part_begin(self) -> None:
        self._name = None
        self._disposition = b""

    def _header_end(self) -> None:
        if b"".join(self._header).strip().lower() == b"content-disposition":
            self._disposition = b"".join(self._value)
        self._header, self._value = [], []

    def _headers_finished(self) -> None:
        kind, params = _parse_header(self._disposition.decode("latin-1"))
        name = params.get("name")
        if kind.lower() != "form-data" or name not in PARTS:
            self._fail("body", f"the parts of a multipart body are {' and '.join(PARTS)}, "
                       f"not {name!r}")
        elif name in self._parts:
            self._fail(name, "is sent twice")
        else:
            self._name = name
            self._parts[name] = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is None:
            return
        part = self._parts[self._name]
        if self._name == "spec" and len(part) + end - start > SPEC_LIMIT:
            self._fail("spec", f"is longer than {SPEC_LIMIT} bytes")
            return
        part += memoryview(data)[start:end]  # appended in place: no slice copy

    def _end(self) -> None:
        self._ended = True

    def _fail(self, field: str, message: str) -> None:
        if self._error is None:
            self._error = InvalidInput(field, message)
        self._name = None

    # -- feeding and finishing ------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if self._error is not None:
            return
        if self._parser is None:
            self._chunks.append(chunk)
            return
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            self._fail("body", f"not a valid multipart/form-data body ({exc})")

    def finish(self) -> tuple[bytes, bytearray | None]:
        """``(spec, payload)``; for a JSON body ``(body, None)``."""
        if self._parser is not None and self._error is None:
            try:
                self._parser.finalize()
            except MultipartParseError as exc:
                self._fail("body", f"not a valid multipart/form-data body ({exc})")
        if self._parser is not None and not self._ended:
            self._fail("body", "the multipart/form-data body ends before its final boundary")
        if self._error is not None:
            raise self._error
        if not self.multipart:
            return b"".join(self._chunks), None
        if "spec" not in self._parts:
            raise InvalidInput("spec", "a multipart body needs a spec part (the task's JSON)")
        # The payload is handed on as the buffer it was written into: copying 300 MB
        # once more costs half a second on these machines, and the store takes any
        # bytes-like object.
        return bytes(self._parts["spec"]), self._parts.get("payload")


def describe() -> dict[str, Any]:
    """The multipart request body, for the OpenAPI document."""
    return {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["spec"],
                "properties": {
                    "spec": {"type": "string", "description": "The task as JSON (the "
                             "application/json body, without `payload`)."},
                    "payload": {"type": "string", "format": "binary",
                                "description": "The raw payload bytes."},
                },
            },
        },
    }
