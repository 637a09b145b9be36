"""Entity-group transactions written and read here, sent on the table client's own pipeline.

Why not ``TableClient.submit_transaction``: the SDK prepares and parses each of a transaction's
up to 100 operations through azure-core's multipart support, which starts two thread pools per
transaction. A full synchronization writes hundreds of transactions, and in a profile of one
that machinery cost the host more CPU than everything else it did. The body here is the
documented ``$batch`` format (one changeset of JSON inserts and replaces); the request still goes
through the client's pipeline, so authentication (shared key or Entra ID), retries, the API
version and the client's transport stay the SDK's.

Only success is read from the answer. A refused or unreadable transaction returns ``None`` and
the caller redoes its pairs one by one through the SDK, which names each pair's own error.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

_INT32 = range(-(2**31), 2**31)
_STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_ETAG_HEADER = re.compile(rb"^ETag: *(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class EntityWrite:
    """One operation of a changeset: insert an entity, or replace it (``if_match``: an etag or ``*``)."""

    entity: Mapping[str, Any]
    if_match: str | None = None  # None: insert

    @property
    def is_insert(self) -> bool:
        return self.if_match is None


def entity_json(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity as the Table service's JSON: ``None`` left out, datetimes typed as Edm.DateTime."""
    body: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            # A value read from the service keeps its own 7-digit text (the SDK's round trip).
            text = getattr(value, "tables_service_value", None) or value.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            body[name], body[f"{name}@odata.type"] = text, "Edm.DateTime"
        elif isinstance(value, bool | str) or (isinstance(value, int) and value in _INT32):
            body[name] = value
        elif isinstance(value, int):
            body[name], body[f"{name}@odata.type"] = str(value), "Edm.Int64"
        elif isinstance(value, float):
            body[name], body[f"{name}@odata.type"] = value, "Edm.Double"
        else:
            raise TypeError(f"property {name}: {type(value).__name__} is not stored in a coupling table")
    return body


def _key(value: str) -> str:
    return quote(value.replace("'", "''"), safe="")


def changeset_body(table: TableClient, writes: Sequence[EntityWrite], batch: str, changeset: str) -> bytes:
    """The multipart ``$batch`` body of one changeset (REST: "Performing entity group transactions")."""
    base = f"{table.url}/{table.table_name}"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for write in writes:
        entity = write.entity
        if write.is_insert:
            line = f"POST {base} HTTP/1.1"
            condition = ""
        else:
            keys = f"PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}'"
            line = f"PUT {base}({keys}) HTTP/1.1"
            condition = f"If-Match: {write.if_match}\r\n"
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"{line}\r\nContent-Type: application/json\r\nAccept: application/json;odata=minimalmetadata\r\n"
            f"Prefer: return-no-content\r\nDataServiceVersion: 3.0;\r\n{condition}\r\n"
            f"{json.dumps(entity_json(entity), separators=(',', ':'))}\r\n"
        )
    parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
    return "".join(parts).encode("utf-8")


def etags_of(body: bytes, count: int) -> list[str] | None:
    """Each operation's new etag, in order, when all ``count`` of them succeeded; else ``None``."""
    statuses = [int(m.group(1)) for m in _STATUS_LINE.finditer(body)]
    etags = [m.group(1).decode("ascii") for m in _ETAG_HEADER.finditer(body)]
    if len(statuses) != count or any(not 200 <= s < 300 for s in statuses) or len(etags) != count:
        return None
    return etags


def submit_changeset(table: TableClient, writes: Sequence[EntityWrite]) -> list[str] | None:
    """Send ``writes`` (one partition, at most 100) as one transaction; the new etags, or ``None``.

    ``None`` means nothing is known to have been written: the service refused the transaction
    (all or nothing), the call failed, or this SDK version no longer exposes its pipeline.
    """
    send = getattr(getattr(table, "_client", None), "send_request", None)
    if send is None or not writes:
        return None
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    request = HttpRequest(
        "POST",
        # The address the SDK's own transactions go to.
        f"{table.scheme}://{table._primary_hostname}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        },
        content=changeset_body(table, writes, batch, changeset),
    )
    try:
        response = send(request, stream=True)
        if response.status_code != 202:
            return None
        return etags_of(response.read(), len(writes))
    except Exception:  # the caller redoes the pairs one by one and reports their own errors
        return None
