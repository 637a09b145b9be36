"""The connector's own queue messages: their JSON shapes, parsed strictly.

A message that does not parse can never succeed, so parsing raises ``PermanentError`` and the
trigger settles it at once with the reason stored, instead of letting it be retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.domain.state import SyncDirection
from shared.errors import PermanentError

__all__ = ["SyncMappingRequest", "SyncRecordsRequest", "parse_record_sync_message"]


@dataclass(frozen=True)
class SyncMappingRequest:
    """Synchronize a mapping's modified records, into job rows already created."""

    mapping: str
    job_ids: dict[SyncDirection, str]

    def to_json(self) -> dict[str, Any]:
        """The message body."""
        return {"type": "syncMapping", "mapping": self.mapping, "jobIds": {d.value: j for d, j in self.job_ids.items()}}


@dataclass(frozen=True)
class SyncRecordsRequest:
    """Synchronize given source records in one direction (webhooks, Dataverse push)."""

    mapping: str
    direction: SyncDirection
    ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The message body."""
        return {
            "type": "syncRecords",
            "mapping": self.mapping,
            "direction": self.direction.value,
            "ids": list(self.ids),
        }


def _malformed(reason: str) -> PermanentError:
    return PermanentError(f"malformed record-sync message: {reason}", code="MalformedMessage")


def _direction(value: Any) -> SyncDirection:
    try:
        direction = SyncDirection(value)
    except ValueError:
        raise _malformed(f"direction must be toDataverse or fromDataverse, got {value!r}") from None
    if direction is SyncDirection.BIDIRECTIONAL:
        raise _malformed("direction must be toDataverse or fromDataverse")
    return direction


def parse_record_sync_message(body: bytes) -> SyncMappingRequest | SyncRecordsRequest:
    """Parse a ``record-sync`` queue message.

    Raises:
        PermanentError: ``MalformedMessage`` naming what is wrong.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise _malformed(f"not JSON ({error})") from None
    if not isinstance(document, dict):
        raise _malformed("not a JSON object")
    kind, mapping = document.get("type"), document.get("mapping")
    if not isinstance(mapping, str) or not mapping:
        raise _malformed("mapping is missing")
    if kind == "syncMapping":
        job_ids = document.get("jobIds")
        if not isinstance(job_ids, dict) or not all(isinstance(v, str) for v in job_ids.values()):
            raise _malformed("jobIds must be an object of job ids by direction")
        return SyncMappingRequest(mapping, {_direction(k): v for k, v in job_ids.items()})
    if kind == "syncRecords":
        ids = document.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise _malformed("ids must be a non-empty list of record ids")
        return SyncRecordsRequest(mapping, _direction(document.get("direction")), tuple(ids))
    raise _malformed(f"unknown type {kind!r}")
