"""Sync error rows in Table Storage, newest first per mapping."""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableClient

from shared.adapters.tables._errors import table_errors
from shared.adapters.tables._keys import encode_key
from shared.domain.state import SyncErrorRecord

# Table Storage strings are limited to 64 KiB; the built-in keeps 2,048 characters of message.
_MAX_MESSAGE = 2048
_MAX_DETAIL = 16_000


def _entity(error: SyncErrorRecord) -> dict[str, Any]:
    return {
        "PartitionKey": encode_key(error.mapping),
        "RowKey": error.error_id,
        "Mapping": error.mapping,
        "JobId": error.job_id,
        "Source": error.source,
        "Destination": error.destination,
        "Message": error.message[:_MAX_MESSAGE],
        "Detail": error.detail[:_MAX_DETAIL],
        "CreatedAt": error.created_at,
    }


def _record(entity: Any) -> SyncErrorRecord:
    return SyncErrorRecord(
        error_id=entity["RowKey"],
        mapping=entity["Mapping"],
        job_id=entity.get("JobId") or "",
        source=entity.get("Source") or "",
        destination=entity.get("Destination") or "",
        message=entity.get("Message") or "",
        detail=entity.get("Detail") or "",
        created_at=entity["CreatedAt"],
    )


class TableSyncErrorStore:
    """``SyncErrorStore`` on Azure Table Storage. Error ids come from ``newest_first_key``."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add(self, error: SyncErrorRecord) -> None:
        """Store one error row (an id seen before is overwritten, so a retried write is harmless)."""
        with table_errors(f"storing sync error {error.error_id}"):
            self._table.upsert_entity(_entity(error))

    def list_errors(self, mapping: str | None = None, *, limit: int = 100) -> list[SyncErrorRecord]:
        """Newest errors first."""
        with table_errors("listing sync errors"):
            if mapping is not None:
                found: list[SyncErrorRecord] = []
                for entity in self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": encode_key(mapping)}, results_per_page=limit
                ):
                    found.append(_record(entity))
                    if len(found) >= limit:
                        break
                return found
            everything = [_record(e) for e in self._table.list_entities(results_per_page=1000)]
        everything.sort(key=lambda e: e.error_id)
        return everything[:limit]
