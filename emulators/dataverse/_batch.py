"""``$batch`` wire format: parse a ``multipart/mixed`` request, write a ``multipart/mixed`` response.

Pure text handling (wire-protocols §A.4); executing the parts is the service's job.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from . import _errors as err

_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass
class BatchOperation:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    operations: list[BatchOperation] = field(default_factory=list)


BatchItem = BatchOperation | ChangeSet


@dataclass
class PartResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    content_id: str | None = None


def boundary_of(content_type: str | None) -> str:
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise err.bad_request("The batch request must have Content-Type multipart/mixed with a boundary.")
    match = _BOUNDARY_RE.search(content_type)
    if match is None:
        raise err.bad_request("The batch request's Content-Type has no boundary.")
    return match.group(1)


def _split_headers(block: str) -> tuple[dict[str, str], str]:
    head, _, rest = block.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _parts(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    if f"{delimiter}--" not in text:
        raise err.bad_request(f"The batch body does not end with the closing boundary '{delimiter}--'.")
    body = text.split(f"{delimiter}--", 1)[0]
    chunks = body.split(delimiter)[1:]  # the preamble before the first delimiter is ignored
    return [chunk.strip("\n") for chunk in chunks]


def _operation(part: str) -> BatchOperation:
    mime_headers, http_text = _split_headers(part)
    if "application/http" not in mime_headers.get("content-type", "application/http").lower():
        raise err.bad_request("Each batch part must have Content-Type application/http.")
    request_line, _, rest = http_text.partition("\n")
    words = request_line.strip().split(" ")
    if len(words) < 2:
        raise err.bad_request(f"The batch part request line '{request_line.strip()}' is not valid.")
    headers: dict[str, str]
    if rest.startswith("\n"):  # no headers: the blank line follows the request line at once
        headers, body = {}, rest[1:]
    else:
        headers, body = _split_headers(rest)
    content_id = mime_headers.get("content-id") or headers.get("content-id")
    # Be lenient about unencoded spaces in the URL: everything between the method and the protocol.
    url = " ".join(words[1:-1]) if len(words) > 2 and words[-1].upper().startswith("HTTP/") else " ".join(words[1:])
    return BatchOperation(
        method=words[0].upper(),
        url=url,
        headers=headers,
        body=body.strip("\n").encode("utf-8"),
        content_id=content_id,
    )


def parse_batch(body: bytes, content_type: str | None) -> list[BatchItem]:
    """Parse a batch request body into operations and change sets, in request order.

    Raises:
        DataverseError: 400 for a malformed body.
    """
    boundary = boundary_of(content_type)
    text = body.decode("utf-8").replace("\r\n", "\n")
    items: list[BatchItem] = []
    for part in _parts(text, boundary):
        mime_headers, rest = _split_headers(part)
        part_type = mime_headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            inner_boundary = boundary_of(part_type)
            change_set = ChangeSet()
            for inner in _parts(rest, inner_boundary):
                inner_headers, _ = _split_headers(inner)
                if inner_headers.get("content-type", "").lower().startswith("multipart/mixed"):
                    raise err.bad_request("Nested change sets are not supported.")
                change_set.operations.append(_operation(inner))
            items.append(change_set)
        else:
            items.append(_operation(part))
    return items


def _http_text(response: PartResponse) -> str:
    reason = HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
    lines = [f"HTTP/1.1 {response.status} {reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n" + response.body.decode("utf-8")


def _part_text(response: PartResponse) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if response.content_id is not None:
        head += f"Content-ID: {response.content_id}\r\n"
    return head + "\r\n" + _http_text(response) + "\r\n"


def write_batch(items: list[PartResponse | list[PartResponse]]) -> tuple[str, bytes]:
    """The response body and its Content-Type; a list is a change-set response."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[str] = []
    for item in items:
        chunks.append(f"--{boundary}\r\n")
        if isinstance(item, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            chunks.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n")
            for response in item:
                chunks.append(f"--{inner}\r\n{_part_text(response)}")
            chunks.append(f"--{inner}--\r\n")
        else:
            chunks.append(_part_text(item))
    chunks.append(f"--{boundary}--\r\n")
    return f"multipart/mixed; boundary={boundary}", "".join(chunks).encode("utf-8")
