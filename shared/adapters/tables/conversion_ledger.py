"""The conversion ledger and the quote archive in Table Storage.

Ledger: partition = kind (``order``, ``quote``, ``quote-won``), row = the Dataverse id. A claim is
a conditional insert (a second worker's insert fails: the row exists) or an update conditional on
the ETag read; every later write of the claimant is conditional on the ETag of its previous write,
so a worker whose claim was taken over learns it at its next write and stops.

Archive: partition = the Sales quote number, row = the archived version (zero-padded, so versions
list in order); the archived BC quote is kept as JSON.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables._errors import table_errors
from shared.adapters.tables._keys import encode_key
from shared.domain.conversion_ledger import ConversionEntry, ConversionState

__all__ = ["TableConversionLedger", "TableQuoteArchive"]

_MAX_TEXT = 30_000  # Table Storage strings hold 64 KiB (UTF-16)


def _entity(entry: ConversionEntry) -> dict[str, Any]:
    return {
        "PartitionKey": encode_key(entry.kind),
        "RowKey": encode_key(entry.dataverse_id),
        "Kind": entry.kind,
        "DataverseId": entry.dataverse_id,
        "State": entry.state.value,
        "DocumentNumber": entry.document_number,
        "Holder": entry.holder,
        "ClaimedUntil": entry.claimed_until,
        "BcId": entry.bc_id or "",
        "BcNumber": entry.bc_number,
        "Step": entry.step,
        "LastError": entry.last_error[:2048],
        "LastErrorCode": entry.last_error_code,
        "Attempts": entry.attempts,
        "UpdatedAt": entry.updated_at,
    }


def _entry(entity: Any) -> ConversionEntry:
    claimed = entity.get("ClaimedUntil")
    updated = entity.get("UpdatedAt")
    return ConversionEntry(
        kind=entity["Kind"],
        dataverse_id=entity["DataverseId"],
        state=ConversionState(entity["State"]),
        document_number=entity.get("DocumentNumber") or "",
        holder=entity.get("Holder") or "",
        claimed_until=claimed if isinstance(claimed, datetime) else None,
        bc_id=entity.get("BcId") or None,
        bc_number=entity.get("BcNumber") or "",
        step=entity.get("Step") or "",
        last_error=entity.get("LastError") or "",
        last_error_code=entity.get("LastErrorCode") or "",
        attempts=int(entity.get("Attempts") or 0),
        updated_at=updated if isinstance(updated, datetime) else None,
        etag=entity.metadata["etag"],
    )


class TableConversionLedger:
    """``ConversionLedger`` on Azure Table Storage."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, kind: str, dataverse_id: str) -> ConversionEntry | None:
        """The row, or ``None``."""
        with table_errors(f"reading the conversion ledger for {kind} {dataverse_id}"):
            try:
                return _entry(self._table.get_entity(encode_key(kind), encode_key(dataverse_id)))
            except ResourceNotFoundError:
                return None

    def write(self, entry: ConversionEntry) -> ConversionEntry | None:
        """Insert (``etag`` None) or replace conditionally; ``None`` when another worker wrote first."""
        with table_errors(f"writing the conversion ledger for {entry.kind} {entry.dataverse_id}"):
            try:
                if entry.etag is None:
                    result = self._table.create_entity(_entity(entry))
                else:
                    result = self._table.update_entity(
                        _entity(entry),
                        mode=UpdateMode.REPLACE,
                        etag=entry.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                return None
        return entry.with_changes(etag=result["etag"])

    def list_entries(self, kind: str) -> list[ConversionEntry]:
        """Every row of a kind."""
        with table_errors(f"listing the conversion ledger of {kind}"):
            entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(kind)})
            return [_entry(e) for e in entities]


class TableQuoteArchive:
    """Archived BC quote versions, per Sales quote number."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add(self, quote_number: str, version: int, entry: dict[str, Any]) -> None:
        """Store a version (the same version again overwrites it: a retried archive is harmless)."""
        body = json.dumps(entry, default=str)
        with table_errors(f"archiving version {version} of quote {quote_number}"):
            self._table.upsert_entity(
                {
                    "PartitionKey": encode_key(quote_number),
                    "RowKey": f"{version:06d}",
                    "QuoteNumber": quote_number,
                    "Version": version,
                    "Document": body[:_MAX_TEXT],
                    "Truncated": len(body) > _MAX_TEXT,
                }
            )

    def list_versions(self, quote_number: str) -> list[dict[str, Any]]:
        """Archived versions, oldest first."""
        with table_errors(f"listing the archive of quote {quote_number}"):
            entities = list(
                self._table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(quote_number)})
            )
        versions = []
        for entity in sorted(entities, key=lambda e: e["RowKey"]):
            try:
                document = json.loads(entity.get("Document") or "{}")
            except ValueError:
                document = {"unreadable": True}
            versions.append({"version": int(entity["Version"]), "truncated": bool(entity.get("Truncated")), **document})
        return versions
