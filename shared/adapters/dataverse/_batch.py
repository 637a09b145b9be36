"""The ``$batch`` wire format (wire-protocols §A.4): pure text, no I/O.

Only independent operations are sent (no change sets): each part succeeds or fails on its own,
which with ``Prefer: odata.continue-on-error`` is what per-row outcomes need.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchOperation", "PartResponse", "decode_batch", "encode_batch"]

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_STATUS_LINE = re.compile(r"^HTTP/\d\.\d\s+(\d{3})")


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a batch; ``url`` is absolute."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartResponse:
    """One response inside a batch response."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def encode_batch(operations: Sequence[BatchOperation]) -> tuple[str, bytes]:
    """The ``Content-Type`` and body of a batch request holding ``operations`` in order."""
    boundary = f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    for number, operation in enumerate(operations, start=1):
        lines += [
            f"--{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {number}",
            "",
            f"{operation.method} {operation.url} HTTP/1.1",
        ]
        headers = dict(operation.headers)
        if operation.body is not None:
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("")
        lines.append(json.dumps(operation.body) if operation.body is not None else "")
    lines += [f"--{boundary}--", ""]
    return f"multipart/mixed; boundary={boundary}", "\r\n".join(lines).encode("utf-8")


def decode_batch(content_type: str, body: bytes) -> list[PartResponse]:
    """The part responses of a batch response, in order (change-set responses flattened).

    Raises:
        ValueError: the body is not a multipart batch response.
    """
    match = _BOUNDARY.search(content_type or "")
    if match is None:
        raise ValueError("the batch response has no multipart boundary")
    text = body.decode("utf-8").replace("\r\n", "\n")
    responses: list[PartResponse] = []
    for part in _parts(text, match.group(1)):
        mime, _, rest = part.partition("\n\n")
        mime_headers = _headers(mime)
        inner_type = mime_headers.get("content-type", "")
        if inner_type.lower().startswith("multipart/mixed"):
            responses += decode_batch(inner_type, rest.encode("utf-8"))
            continue
        status_line, _, after = rest.partition("\n")
        status = _STATUS_LINE.match(status_line.strip())
        if status is None:
            raise ValueError(f"a batch part has no status line: {status_line[:80]!r}")
        if after.startswith("\n"):  # no headers: the blank line follows the status line at once
            head, content = "", after[1:]
        else:
            head, _, content = after.partition("\n\n")
        responses.append(PartResponse(int(status.group(1)), _headers(head), content.strip("\n").encode("utf-8")))
    return responses


def _parts(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    text = text.split(f"{delimiter}--", 1)[0]
    return [chunk.strip("\n") for chunk in text.split(delimiter)[1:]]


def _headers(block: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split("\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers
