"""Couplings in Table Storage: a mirrored pair of rows per coupling, written in one transaction.

Partition = mapping name. Row ``bc:<BC id>`` and row ``dv:<Dataverse id>`` carry the same state,
so either side resolves with one point read and bulk lookups need no join. Because both rows are
in one partition, an entity-group transaction creates, updates or deletes the pair atomically:
a second coupling of either record fails the whole transaction, so two workers racing to couple
the same record cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.adapters.tables._changesets import EntityWrite, submit_changeset
from shared.adapters.tables._errors import map_table_error, table_errors
from shared.adapters.tables._keys import decode_key, encode_key
from shared.domain.state import Coupling, SyncDirection
from shared.errors import PermanentError, RetriableError, SyncError

SCHEMA_VERSION = 1
# Table Storage allows at most 15 discrete comparisons in one $filter.
_FILTER_CHUNK = 15
_BULK_PARALLELISM = 8
# From this many keys on, a lookup first tries one row-key range query (see _get_range), giving
# up once it has read this many times as many rows as were asked for.
_RANGE_MIN_KEYS = 100
_RANGE_OVERREAD = 2
# An entity-group transaction holds at most 100 operations: 50 pairs of rows.
_PAIRS_PER_TRANSACTION = 50

_BC = "bc:"
_DV = "dv:"
# Marks a coupling etag that belongs to the pair's dv: row (read from that side).
_DV_ETAG = "dv|"


def _bc_row_key(bc_id: str) -> str:
    return _BC + encode_key(bc_id)


def _dv_row_key(dataverse_id: str) -> str:
    return _DV + encode_key(dataverse_id)


def _entity(coupling: Coupling, row_key: str) -> dict[str, Any]:
    return {
        "PartitionKey": encode_key(coupling.mapping),
        "RowKey": row_key,
        "SchemaVersion": SCHEMA_VERSION,
        "BcId": coupling.bc_id,
        "DataverseId": coupling.dataverse_id,
        "BcModifiedAt": coupling.bc_modified_at,
        "DataverseModifiedAt": coupling.dataverse_modified_at,
        "LastSyncedAt": coupling.last_synced_at,
        "LastResultToBc": coupling.last_result_to_bc,
        "LastResultToDataverse": coupling.last_result_to_dataverse,
        "LastJobId": coupling.last_job_id,
        "LastError": coupling.last_error,
        "ConsecutiveFailures": coupling.consecutive_failures,
        "Skipped": coupling.skipped,
        "RecheckInSales": coupling.recheck_in_sales,
        # Text: Dataverse row versions outgrow Int32, and text reads back the same on every path.
        "DataverseVersion": None if coupling.dataverse_version is None else str(coupling.dataverse_version),
    }


def _as_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _coupling(mapping: str, entity: Any, etag: str | None) -> Coupling:
    return Coupling(
        mapping=mapping,
        bc_id=entity["BcId"],
        dataverse_id=entity["DataverseId"],
        bc_modified_at=_as_datetime(entity.get("BcModifiedAt")),
        dataverse_modified_at=_as_datetime(entity.get("DataverseModifiedAt")),
        last_synced_at=_as_datetime(entity.get("LastSyncedAt")),
        last_result_to_bc=entity.get("LastResultToBc"),
        last_result_to_dataverse=entity.get("LastResultToDataverse"),
        last_job_id=entity.get("LastJobId"),
        last_error=entity.get("LastError"),
        consecutive_failures=int(entity.get("ConsecutiveFailures") or 0),
        skipped=bool(entity.get("Skipped")),
        recheck_in_sales=bool(entity.get("RecheckInSales")),
        dataverse_version=_as_int(entity.get("DataverseVersion")),
        etag=etag,
    )


def _odata_string(value: str) -> str:
    # OData string literal: single quotes doubled.
    return "'" + value.replace("'", "''") + "'"


class TableCouplingStore:
    """``CouplingStore`` on Azure Table Storage.

    A coupling's ``etag`` is its ``bc:`` row's etag (or, marked, its ``dv:`` row's when it was
    looked up by Dataverse id). Every write replaces both rows in one transaction, so a condition
    on one row alone tells whether the pair changed since it was read; the other row is written
    unconditionally in the same transaction (and the transaction fails if that row is gone, i.e.
    the coupling was removed meanwhile).
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get_by_bc_id(self, mapping: str, bc_id: str) -> Coupling | None:
        """The coupling of a BC record, or ``None``. Raises RetriableError/ConfigurationError."""
        return self._get_pair(mapping, _bc_row_key(bc_id))

    def get_by_dataverse_id(self, mapping: str, dataverse_id: str) -> Coupling | None:
        """The coupling of a Dataverse row, or ``None``. Raises RetriableError/ConfigurationError."""
        return self._get_pair(mapping, _dv_row_key(dataverse_id))

    def get_many_by_bc_ids(self, mapping: str, bc_ids: Iterable[str]) -> dict[str, Coupling]:
        """Couplings of many BC records, in parallel filtered queries of 15 keys each.

        The couplings carry their etags, so they can be updated without another read.
        """
        found = self._get_many(mapping, [_bc_row_key(i) for i in dict.fromkeys(bc_ids)])
        return {c.bc_id: c for c in found}

    def get_many_by_dataverse_ids(self, mapping: str, dataverse_ids: Iterable[str]) -> dict[str, Coupling]:
        """Couplings of many Dataverse rows, keyed by Dataverse id (bulk queries on the ``dv:`` rows).

        The ``dv:`` row carries the pair's whole state, so it is enough; the coupling's etag is
        then that row's, marked so that an update makes its condition on the ``dv:`` row (both
        rows are always written together, so either row's etag tells whether the pair changed).
        """
        mirrors = self._get_many(mapping, [_dv_row_key(i) for i in dict.fromkeys(dataverse_ids)])
        return {c.dataverse_id: c.with_changes(etag=_DV_ETAG + c.etag if c.etag else None) for c in mirrors}

    def pairs(self, mapping: str, *, limit: int) -> dict[str, str] | None:
        """BC id → Dataverse id of every coupling of ``mapping`` (its ``bc:`` rows, two columns,
        1,000 a page); ``None`` as soon as there are more than ``limit``."""
        query = f"PartitionKey eq {_odata_string(encode_key(mapping))} and RowKey ge 'bc:' and RowKey lt 'bc;'"
        found: dict[str, str] = {}
        with table_errors(f"reading the couplings of {mapping}"):
            for entity in self._table.query_entities(query, select=["BcId", "DataverseId"], results_per_page=1000):
                if len(found) >= limit:
                    return None
                found[str(entity["BcId"]).lower()] = str(entity["DataverseId"]).lower()
        return found

    def couple(self, coupling: Coupling) -> Coupling:
        """Store a new coupling as one transaction of two inserts.

        Raises:
            PermanentError: code ``CouplingConflict`` when the BC record or the Dataverse row is
                already coupled under this mapping (also when another worker just coupled it).
        """
        operations: list[Any] = [
            ("create", _entity(coupling, _bc_row_key(coupling.bc_id))),
            ("create", _entity(coupling, _dv_row_key(coupling.dataverse_id))),
        ]
        try:
            results = self._table.submit_transaction(operations)
        except TableTransactionError as error:
            if _error_code(error) == "EntityAlreadyExists":
                raise self._conflict(coupling) from error
            raise map_table_error(error, f"coupling {coupling.mapping} {coupling.bc_id}") from error
        except Exception as error:
            raise map_table_error(error, f"coupling {coupling.mapping} {coupling.bc_id}") from error
        return coupling.with_changes(etag=results[0]["etag"])

    def couple_many(self, couplings: Sequence[Coupling]) -> list[Coupling | SyncError]:
        """Store many new couplings of one mapping, 50 pairs per transaction, transactions in parallel.

        A transaction that fails (one of its records was coupled meanwhile) is redone pair by
        pair, so every coupling gets its own outcome: the stored coupling, or the error (e.g.
        ``CouplingConflict``) that refused it. Results are in the order given.
        """
        return self._in_transactions(couplings, self._couple_chunk)

    def update_many(self, couplings: Sequence[Coupling]) -> list[Coupling | SyncError]:
        """Write many changed couplings, 50 pairs per transaction (in parallel), each conditional on its etag.

        A refused transaction is redone pair by pair, so only the pairs that really changed
        meanwhile get a ``RetriableError`` (``ConcurrencyConflict``). Results are in the order given.
        """
        return self._in_transactions(couplings, self._update_chunk)

    def _in_transactions(
        self,
        couplings: Sequence[Coupling],
        write: Callable[[list[Coupling]], list[Coupling | SyncError]],
    ) -> list[Coupling | SyncError]:
        # Transactions are independent (each pair is in exactly one), so they go out together:
        # a page's coupling writes cost a few round trips, not one per 50 pairs.
        chunks = [
            list(couplings[start : start + _PAIRS_PER_TRANSACTION])
            for start in range(0, len(couplings), _PAIRS_PER_TRANSACTION)
        ]
        if len(chunks) <= 1:
            return [r for chunk in chunks for r in write(chunk)]
        with ThreadPoolExecutor(max_workers=min(_BULK_PARALLELISM, len(chunks))) as pool:
            return [r for results in pool.map(write, chunks) for r in results]

    def _couple_chunk(self, chunk: list[Coupling]) -> list[Coupling | SyncError]:
        if len({c.mapping for c in chunk}) != 1 or len(chunk) == 1:
            return self._couple_each(chunk)
        writes: list[EntityWrite] = []
        for coupling in chunk:
            writes.append(EntityWrite(_entity(coupling, _bc_row_key(coupling.bc_id))))
            writes.append(EntityWrite(_entity(coupling, _dv_row_key(coupling.dataverse_id))))
        etags = submit_changeset(self._table, writes)
        if etags is None:  # refused (or not known to be written): each pair on its own, with its own outcome
            return self._couple_each(chunk)
        return [c.with_changes(etag=etags[2 * i]) for i, c in enumerate(chunk)]

    def _update_chunk(self, chunk: list[Coupling]) -> list[Coupling | SyncError]:
        if len({c.mapping for c in chunk}) != 1 or len(chunk) == 1 or any(not c.etag for c in chunk):
            return self._update_each(chunk)
        writes: list[EntityWrite] = []
        for coupling in chunk:
            assert coupling.etag is not None
            from_dv = coupling.etag.startswith(_DV_ETAG)
            etag = coupling.etag.removeprefix(_DV_ETAG)
            writes.append(EntityWrite(_entity(coupling, _bc_row_key(coupling.bc_id)), "*" if from_dv else etag))
            writes.append(EntityWrite(_entity(coupling, _dv_row_key(coupling.dataverse_id)), etag if from_dv else "*"))
        etags = submit_changeset(self._table, writes)
        if etags is None:  # refused (or not known to be written): each pair on its own, with its own outcome
            return self._update_each(chunk)
        return [c.with_changes(etag=etags[2 * i]) for i, c in enumerate(chunk)]

    def _update_each(self, chunk: Sequence[Coupling]) -> list[Coupling | SyncError]:
        outcomes: list[Coupling | SyncError] = []
        for coupling in chunk:
            try:
                outcomes.append(self.update(coupling))
            except SyncError as error:
                outcomes.append(error)
        return outcomes

    def _couple_each(self, chunk: Sequence[Coupling]) -> list[Coupling | SyncError]:
        outcomes: list[Coupling | SyncError] = []
        for coupling in chunk:
            try:
                outcomes.append(self.couple(coupling))
            except SyncError as error:
                outcomes.append(error)
        return outcomes

    def update(self, coupling: Coupling) -> Coupling:
        """Replace both rows, conditional on the ``bc:`` row's etag read earlier.

        Raises:
            RetriableError: code ``ConcurrencyConflict`` when the coupling changed since it was
                read (re-read and redo the decision), or it was removed meanwhile.
            PermanentError: the coupling was never read (no etag).
        """
        if not coupling.etag:
            raise PermanentError("a coupling must be read before it is updated", code="CouplingNotRead")
        operations = _conditional_update(coupling)
        try:
            results = self._table.submit_transaction(operations)
        except TableTransactionError as error:
            if _error_code(error) in {"UpdateConditionNotSatisfied", "ResourceNotFound", "EntityNotFound"}:
                raise RetriableError(
                    f"coupling {coupling.mapping} {coupling.bc_id} changed since it was read",
                    code="ConcurrencyConflict",
                ) from error
            raise map_table_error(error, f"updating coupling {coupling.mapping} {coupling.bc_id}") from error
        except Exception as error:
            raise map_table_error(error, f"updating coupling {coupling.mapping} {coupling.bc_id}") from error
        return coupling.with_changes(etag=results[0]["etag"])

    def uncouple(self, mapping: str, bc_id: str) -> Coupling | None:
        """Delete both rows in one transaction; ``None`` when the BC record was not coupled."""
        current = self.get_by_bc_id(mapping, bc_id)
        if current is None:
            return None
        assert current.etag is not None
        partition = encode_key(mapping)
        operations: list[Any] = [
            (
                "delete",
                {"PartitionKey": partition, "RowKey": _bc_row_key(current.bc_id)},
                {"etag": current.etag, "match_condition": MatchConditions.IfNotModified},
            ),
            ("delete", {"PartitionKey": partition, "RowKey": _dv_row_key(current.dataverse_id)}),
        ]
        try:
            self._table.submit_transaction(operations)
        except TableTransactionError as error:
            raise RetriableError(
                f"coupling {mapping} {bc_id} changed while it was being removed", code="ConcurrencyConflict"
            ) from error
        except Exception as error:
            raise map_table_error(error, f"uncoupling {mapping} {bc_id}") from error
        return current

    def list_couplings(
        self, mapping: str, *, skipped_only: bool = False, failed_toward: SyncDirection | None = None
    ) -> Iterator[Coupling]:
        """Couplings of a mapping, lazily (the SDK pages through the partition).

        ``skipped_only`` keeps skipped ones; ``failed_toward`` keeps the not-skipped ones whose
        last sync in that direction failed (the ones a scheduled run retries first) and, toward
        BC, those flagged to be read back from Sales (``Coupling.recheck_in_sales``).
        """
        partition = encode_key(mapping)
        query = f"PartitionKey eq {_odata_string(partition)} and RowKey ge 'bc:' and RowKey lt 'bc;'"
        if skipped_only:
            query += " and Skipped eq true"
        if failed_toward is not None:
            column = "LastResultToDataverse" if failed_toward is SyncDirection.TO_DATAVERSE else "LastResultToBc"
            due = f"{column} eq 'Failure'"
            if failed_toward is SyncDirection.FROM_DATAVERSE:
                due = f"({due} or RecheckInSales eq true)"
            query += f" and {due} and Skipped eq false"
        with table_errors(f"listing couplings of {mapping}"):
            for entity in self._table.query_entities(query, results_per_page=1000):
                yield _coupling(mapping, entity, entity.metadata["etag"])

    # -- helpers -------------------------------------------------------------------------------

    def _get_pair(self, mapping: str, row_key: str) -> Coupling | None:
        partition = encode_key(mapping)
        with table_errors(f"reading coupling {mapping} {decode_key(row_key[3:])}"):
            try:
                first = self._table.get_entity(partition, row_key)
            except ResourceNotFoundError:
                return None
            mirror_key = _dv_row_key(first["DataverseId"]) if row_key.startswith(_BC) else _bc_row_key(first["BcId"])
            try:
                mirror = self._table.get_entity(partition, mirror_key)
            except ResourceNotFoundError:
                # Cannot happen through this store (pairs are written atomically); report loudly.
                raise PermanentError(
                    f"coupling {mapping} {row_key} has no mirror row {mirror_key}", code="CouplingCorrupt"
                ) from None
        bc_row = first if row_key.startswith(_BC) else mirror
        return _coupling(mapping, bc_row, bc_row.metadata["etag"])

    def _get_many(self, mapping: str, row_keys: list[str]) -> list[Coupling]:
        if not row_keys:
            return []
        if len(row_keys) >= _RANGE_MIN_KEYS:
            in_range = self._get_range(mapping, row_keys)
            if in_range is not None:
                return in_range
        partition = _odata_string(encode_key(mapping))
        chunks = [row_keys[i : i + _FILTER_CHUNK] for i in range(0, len(row_keys), _FILTER_CHUNK)]

        def query(chunk: list[str]) -> list[Coupling]:
            keys = " or ".join(f"RowKey eq {_odata_string(k)}" for k in chunk)
            with table_errors(f"looking up couplings of {mapping}"):
                return [
                    _coupling(mapping, e, e.metadata["etag"])
                    for e in self._table.query_entities(f"PartitionKey eq {partition} and ({keys})")
                ]

        if len(chunks) == 1:
            return query(chunks[0])
        with ThreadPoolExecutor(max_workers=min(_BULK_PARALLELISM, len(chunks))) as pool:
            return [c for found in pool.map(query, chunks) for c in found]

    def _get_range(self, mapping: str, row_keys: list[str]) -> list[Coupling] | None:
        """The couplings of many keys from one row-key range query, or ``None`` when the range
        holds far more rows than were asked for (the keys are spread over the partition).

        ``or``-ed row keys make the service scan the partition once per 15 keys; a range query
        between the smallest and largest key is one index range. A sync slice is sorted by id,
        so its keys are dense in their range when most records of the table are coupled.
        """
        wanted = set(row_keys)
        budget = _RANGE_OVERREAD * len(wanted)
        partition = _odata_string(encode_key(mapping))
        query = (
            f"PartitionKey eq {partition} and RowKey ge {_odata_string(min(wanted))} "
            f"and RowKey le {_odata_string(max(wanted))}"
        )
        found: list[Coupling] = []
        with table_errors(f"looking up couplings of {mapping}"):
            for read, entity in enumerate(self._table.query_entities(query, results_per_page=1000), start=1):
                if read > budget:
                    return None
                if entity["RowKey"] in wanted:
                    found.append(_coupling(mapping, entity, entity.metadata["etag"]))
        return found

    def _conflict(self, coupling: Coupling) -> PermanentError:
        # Name which side is taken, in the built-in integration's words (behaviour ref §2.1).
        existing_bc = self.get_by_bc_id(coupling.mapping, coupling.bc_id)
        if existing_bc is not None:
            return PermanentError(
                f"Cannot couple {coupling.mapping} BC record {coupling.bc_id} to Dataverse row "
                f"{coupling.dataverse_id}, because the BC record is already coupled to Dataverse row "
                f"{existing_bc.dataverse_id}.",
                code="CouplingConflict",
            )
        existing_dv = self.get_by_dataverse_id(coupling.mapping, coupling.dataverse_id)
        other = existing_dv.bc_id if existing_dv else "another record"
        return PermanentError(
            f"Cannot couple Dataverse row {coupling.dataverse_id} to {coupling.mapping} BC record "
            f"{coupling.bc_id}, because the Dataverse row is already coupled to BC record {other}.",
            code="CouplingConflict",
        )


def _conditional_update(coupling: Coupling) -> list[Any]:
    """Replace both rows of a pair, conditional on the etag of the row the coupling was read from."""
    assert coupling.etag is not None
    from_dv = coupling.etag.startswith(_DV_ETAG)
    condition = {
        "mode": UpdateMode.REPLACE,
        "etag": coupling.etag.removeprefix(_DV_ETAG),
        "match_condition": MatchConditions.IfNotModified,
    }
    plain = {"mode": UpdateMode.REPLACE}
    return [
        ("update", _entity(coupling, _bc_row_key(coupling.bc_id)), plain if from_dv else condition),
        ("update", _entity(coupling, _dv_row_key(coupling.dataverse_id)), condition if from_dv else plain),
    ]


def _error_code(error: TableTransactionError) -> str:
    # The SDK sets ``error_code`` dynamically from the response body.
    return str(getattr(error, "error_code", "") or "")
