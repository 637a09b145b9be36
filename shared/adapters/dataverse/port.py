"""``DataverseAdapter``: the ``DataversePort`` over the Dataverse Web API v9.2.

Reads page at the requested size (at most 5,000) and follow ``@odata.nextLink``; reads by id
go in chunks of ``pk eq … or …`` filters. Writes use ``CreateMultiple`` / ``UpdateMultiple``
where the table supports them and ``$batch`` with ``odata.continue-on-error`` otherwise
(wire-protocols §A.4, §A.7b); chunks go out in parallel up to the server's ``x-ms-dop-hint``
through the client's service-protection gate.

Bulk messages are all-or-nothing, so a chunk they reject is sent again as a ``$batch``: the
good rows land and only the bad ones get an error outcome. New rows get their primary key
from us, which makes a create sent twice (a response lost after commit, retried) detectable:
the second one meets the first and counts as done.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from shared.adapters.dataverse._batch import BatchOperation, PartResponse, decode_batch, encode_batch
from shared.adapters.dataverse._metadata import MetadataCatalog, TableMetadata
from shared.adapters.dataverse._rows import LOOKUP_LOGICAL_NAME, from_wire, to_wire, wire_select
from shared.adapters.dataverse.client import DataverseWebApi
from shared.adapters.dataverse.errors import DUPLICATE_RECORD, MESSAGE_NOT_SUPPORTED, part_error
from shared.errors import PermanentError, RetriableError, SyncError
from shared.odata import any_of, guid_literal, string_literal, window_params
from shared.ports import Page, RecordChange, WindowQuery, WriteOutcome

__all__ = ["COUNT_LIMIT", "MAX_PAGE_SIZE", "SYNC_BULK_SIZE", "DataverseAdapter"]

Record = dict[str, Any]
_T = TypeVar("_T")
_R = TypeVar("_R")

MAX_PAGE_SIZE = 5_000  # the service's maximum and default page size
COUNT_LIMIT = 5_000  # $count stops counting here (Microsoft Learn, "Count rows using OData")
MAX_BATCH_OPERATIONS = 1_000
SYNC_BULK_SIZE = 250  # rows per bulk message the sync engine's adapter sends
# From this many id chunks on, reads by id go as GET parts of $batch requests, this many a batch.
_BATCHED_READS_FROM = 4
_READS_PER_BATCH = 20
_FILTER_BUDGET = 6_000  # characters of "pk eq … or …" per GET: far below URL limits of any proxy
_READ_ANNOTATIONS = f'odata.include-annotations="{LOOKUP_LOGICAL_NAME}"'
_COUNT_ANNOTATIONS = (
    'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
    'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
)
_UNSUPPORTED = frozenset({MESSAGE_NOT_SUPPORTED, "HTTP405", "HTTP501"})


@dataclass(frozen=True)
class _Write:
    """One row write of a bulk call: its place in the caller's list and its wire body."""

    index: int
    record_id: str
    body: Mapping[str, Any]
    etag: str | None = None
    generated_id: bool = False


class DataverseAdapter:
    """The Dataverse Web API v9.2 as the sync engine needs it (``shared.ports.DataversePort``)."""

    def __init__(self, api: DataverseWebApi, *, bulk_size: int = 100, batch_size: int = 100) -> None:
        """Build the adapter over one environment's client.

        Args:
            api: the Web API client (auth, error mapping, retries, service protection).
            bulk_size: rows per ``CreateMultiple`` / ``UpdateMultiple`` request (the connector
                uses ``SYNC_BULK_SIZE``: a sync slice of 1,000 rows in four requests, sent
                together, the default ``x-ms-dop-hint``).
            batch_size: operations per ``$batch`` request (at most 1,000; Microsoft advises
                starting well below and measuring, because operations in one batch run one
                after another on the server).
        """
        self._api = api
        self._catalog = MetadataCatalog(api)
        self._bulk_size = max(1, bulk_size)
        self._batch_size = max(1, min(batch_size, MAX_BATCH_OPERATIONS))
        self._bulk_supported: dict[tuple[str, str], bool] = {}
        self._user_id: str | None = None
        self._base_currency: str | None = None
        self._lock = threading.Lock()

    # -- metadata -------------------------------------------------------------------------------
    def primary_key(self, entity_set: str) -> str:
        """The primary key attribute of an entity set, from ``EntityDefinitions``.

        Raises:
            PermanentError: no table has this entity set (``UnknownEntitySet``).
            ConfigurationError, RetriableError: the metadata could not be read.
        """
        return self._catalog.table(entity_set).primary_key

    def application_user_id(self) -> str:
        """The connector's own user id (``WhoAmI``), read once.

        Raises:
            ConfigurationError, RetriableError: the API refused or did not answer.
        """
        with self._lock:
            if self._user_id is None:
                body = self._api.get_json("WhoAmI", doing="asking who the connector is (WhoAmI)")
                self._user_id = str(guid_literal(str(body.get("UserId", ""))))
            return self._user_id

    def base_currency_id(self) -> str | None:
        """The organisation's base currency, read once (``organizations``' ``basecurrencyid``).

        Raises:
            ConfigurationError, RetriableError: the API refused or did not answer.
        """
        with self._lock:
            if self._base_currency is None:
                body = self._api.get_json(
                    "organizations",
                    params={"$select": "_basecurrencyid_value"},
                    doing="reading the organisation's base currency",
                )
                rows = body.get("value") or []
                value = rows[0].get("_basecurrencyid_value") if rows else None
                self._base_currency = str(guid_literal(str(value))) if value else ""
            return self._base_currency or None

    # -- option sets ----------------------------------------------------------------------------
    def list_options(self, entity: str, attribute: str) -> list[dict[str, Any]]:
        """The options of a local option set (picklist) as ``{"value", "label"}``.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        path = (
            f"EntityDefinitions(LogicalName={string_literal(entity)})/Attributes(LogicalName="
            f"{string_literal(attribute)})/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        )
        body = self._api.get_json(
            path,
            params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
            doing=f"reading the options of {entity}.{attribute}",
        )
        options = []
        for option in (body.get("OptionSet") or {}).get("Options") or []:
            label = ((option.get("Label") or {}).get("UserLocalizedLabel") or {}).get("Label")
            options.append({"value": str(option.get("Value")), "label": label or ""})
        return options

    def insert_option(self, entity: str, attribute: str, label: str) -> int:
        """Append an option to a local option set (``InsertOptionValue``); returns its value.

        Raises:
            PermanentError: the label or value exists already, or the label is invalid.
            ConfigurationError, RetriableError: per the Dataverse error table.
        """
        response = self._api.send(
            "POST",
            "InsertOptionValue",
            doing=f"adding the option {label!r} to {entity}.{attribute}",
            json={
                "EntityLogicalName": entity,
                "AttributeLogicalName": attribute,
                "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]},
            },
        )
        return int(response.json()["NewOptionValue"])

    def update_option(self, entity: str, attribute: str, value: int, label: str) -> None:
        """Relabel an option (``UpdateOptionValue``).

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the Dataverse error table.
        """
        self._api.send(
            "POST",
            "UpdateOptionValue",
            doing=f"relabelling option {value} of {entity}.{attribute}",
            json={
                "EntityLogicalName": entity,
                "AttributeLogicalName": attribute,
                "Value": value,
                "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]},
                "MergeLabels": True,
            },
        )

    # -- reads ----------------------------------------------------------------------------------
    def list_rows(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        modified_after: datetime | None = None,
        modified_until: datetime | None = None,
        exclude_modified_by: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        resume_from: str | None = None,
    ) -> Iterator[Sequence[Record]]:
        """Pages of rows, oldest change first, lazily: one page in memory at a time.

        Each page is a ``JsonPage`` (records parsed as they are read) carrying the API's
        nextLink; ``resume_from`` (such a link, as a
        full synchronization stores it between steps) reads on from there.

        ``filter`` is OData text built with ``shared.odata``; it is and-ed with
        ``modifiedon gt modified_after``, ``modifiedon le modified_until`` and
        ``_modifiedby_value ne exclude_modified_by``.

        Raises:
            PermanentError: unknown table, invalid filter or property, invalid user GUID.
            ConfigurationError, RetriableError: per the Dataverse error table.
        """
        table = self._catalog.table(entity_set)
        if resume_from is not None:
            yield from self._pages(table, {}, page_size, start=self._relative(resume_from))
            return
        params = _window_params(WindowQuery(entity_set, filter, modified_after, modified_until, exclude_modified_by))
        if select:
            params["$select"] = wire_select(table, select)
        yield from self._pages(table, params, page_size)

    def list_rows_many(self, queries: Sequence[WindowQuery]) -> list[Iterator[Sequence[Record]]]:
        """Several ``list_rows`` (at the maximum page size) for the price of one request.

        The first page of every query comes from one ``$batch`` of GETs; a query with more pages
        reads the rest from its nextLink when its iterator gets there. A scheduled run reads
        every mapping's window this way.

        Raises:
            PermanentError, RetriableError, ConfigurationError: as ``list_rows``, for any query.
        """
        if len(queries) <= 1:
            return [
                self.list_rows(
                    q.entity_set,
                    filter=q.filter,
                    modified_after=q.modified_after,
                    modified_until=q.modified_until,
                    exclude_modified_by=q.exclude_modified_by,
                )
                for q in queries
            ]
        tables = [self._catalog.table(q.entity_set) for q in queries]
        doing = "reading the changed rows of " + ", ".join(dict.fromkeys(q.entity_set for q in queries))
        bodies = self._batch_get(
            [(t.entity_set, _window_params(q)) for t, q in zip(tables, queries, strict=True)], doing
        )
        return [self._continued(table, body) for table, body in zip(tables, bodies, strict=True)]

    def _continued(self, table: TableMetadata, first: Mapping[str, Any]) -> Iterator[Sequence[Record]]:
        """A query's pages: the first as already answered, the rest from its nextLink."""
        rows = [from_wire(table, row) for row in first.get("value") or [] if isinstance(row, dict)]
        link = self._relative(first.get("@odata.nextLink"))
        if rows:
            yield Page(rows, first.get("@odata.nextLink") if link is not None else None)
        if link is not None:
            yield from self._pages(table, {}, MAX_PAGE_SIZE, start=link)

    def get_rows(
        self, entity_set: str, ids: Iterable[str], *, select: Sequence[str] | None = None
    ) -> dict[str, Record]:
        """Rows by primary key, keyed by the id as given; missing ids are absent.

        Ids go in chunks of ``pk eq … or …`` filters short enough for any URL limit, the chunks
        in parallel: a few hundred ids cost one or two requests.

        Raises:
            PermanentError: unknown table, invalid property, an id that is not a GUID (``InvalidGuid``).
            ConfigurationError, RetriableError: per the Dataverse error table.
        """
        table = self._catalog.table(entity_set)
        wanted: dict[str, str] = {}
        for given in ids:
            wanted.setdefault(guid_literal(given), given)
        if not wanted:
            return {}
        base = {"$select": wire_select(table, select)} if select else {}

        def fetch(chunk: list[str]) -> list[Record]:
            params = {**base, "$filter": any_of(table.primary_key, [uuid.UUID(i) for i in chunk])}
            return [row for page in self._pages(table, params, MAX_PAGE_SIZE) for row in page]

        chunks = _chunks_by_length(list(wanted), len(table.primary_key) + 44)
        if len(chunks) >= _BATCHED_READS_FROM:
            # A sync slice's ids: the filtered GETs travel as parts of a few $batch requests.
            groups = _chunks(chunks, _READS_PER_BATCH)
            results = [
                rows
                for group in self._parallel(lambda g: self._batched_reads(table, base, g), groups)
                for rows in group
            ]
        else:
            results = self._parallel(fetch, chunks)
        found: dict[str, Record] = {}
        for rows in results:
            for row in rows:
                key = str(row.get(table.primary_key, "")).lower()
                if key in wanted:
                    found[wanted[key]] = row
        return found

    def _batched_reads(
        self, table: TableMetadata, base: Mapping[str, str], chunks: list[list[str]]
    ) -> list[list[Record]]:
        """The rows of several id chunks through one ``$batch`` of GETs (one request for the limits)."""
        doing = f"reading {table.entity_set} by id"
        queries = [
            (table.entity_set, {**base, "$filter": any_of(table.primary_key, [uuid.UUID(i) for i in chunk])})
            for chunk in chunks
        ]
        # Not expected for a few hundred ids, but a further page is never dropped.
        return [
            [row for page in self._continued(table, body) for row in page] for body in self._batch_get(queries, doing)
        ]

    def _batch_get(self, queries: Sequence[tuple[str, Mapping[str, str]]], doing: str) -> list[dict[str, Any]]:
        """The first-page answers of several GETs (entity set, query), in order, from one ``$batch``."""
        root = self._api.api_url
        headers = {"Prefer": f"odata.maxpagesize={MAX_PAGE_SIZE},{_READ_ANNOTATIONS}"}
        operations = [
            BatchOperation("GET", f"{root}/{entity_set}?" + urlencode(dict(params), quote_via=quote), None, headers)
            for entity_set, params in queries
        ]
        content_type, payload = encode_batch(operations)
        response = self._api.send("POST", "$batch", data=payload, headers={"Content-Type": content_type}, doing=doing)
        try:
            parts = decode_batch(response.headers.get("Content-Type", ""), response.content)
        except ValueError:
            raise RetriableError(f"Dataverse: {doing}: unreadable batch response", code="UnreadableResponse") from None
        if len(parts) != len(queries):
            raise RetriableError(f"Dataverse: {doing}: the batch answered {len(parts)} parts", code="BatchIncomplete")
        bodies: list[dict[str, Any]] = []
        for part in parts:
            if part.status >= 400:
                raise part_error(part.status, dict(part.headers), part.body, doing)
            try:
                body = json.loads(part.body)
            except ValueError:
                raise RetriableError(f"Dataverse: {doing}: unreadable batch part", code="UnreadableResponse") from None
            if not isinstance(body, dict):
                raise RetriableError(f"Dataverse: {doing}: unreadable batch part", code="UnreadableResponse")
            bodies.append(body)
        return bodies

    def count_rows(self, entity_set: str, *, filter: str | None = None) -> int:
        """How many rows match.

        ``$count`` stops at 5,000; above that the ids are paged through (one request per 5,000
        rows, primary key only), so the answer is exact but costs more on large tables.

        Raises:
            PermanentError: unknown table or invalid filter.
            ConfigurationError, RetriableError: per the Dataverse error table.
        """
        table = self._catalog.table(entity_set)
        params = {"$select": table.primary_key, "$count": "true"}
        if filter:
            params["$filter"] = filter
        body = self._api.get_json(
            table.entity_set,
            params=params,
            headers={"Prefer": f"odata.maxpagesize=1,{_COUNT_ANNOTATIONS}"},
            doing=f"counting {entity_set}",
        )
        count = int(body.get("@odata.count", 0))
        exceeded = body.get("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded", count >= COUNT_LIMIT)
        if not exceeded:
            return count
        paged = {"$select": table.primary_key, **({"$filter": filter} if filter else {})}
        return sum(len(page) for page in self._pages(table, paged, MAX_PAGE_SIZE))

    def _pages(
        self, table: TableMetadata, params: Mapping[str, str], page_size: int, *, start: str | None = None
    ) -> Iterator[Sequence[Record]]:
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        # The same preference must go with every page request (Microsoft Learn, "Page results").
        headers = {"Prefer": f"odata.maxpagesize={size},{_READ_ANNOTATIONS}"}
        doing = f"reading {table.entity_set}"
        path: str | None = start or table.entity_set
        query: Mapping[str, str] | None = None if start else params
        while path is not None:
            page = self._api.get_page(
                path, params=query, headers=headers, doing=doing, convert=functools.partial(from_wire, table)
            )
            following = self._relative(page.next_link)
            if len(page):
                yield page
            # Let go of this page before the next is read (see the BC adapter's _pages).
            del page
            path, query = following, None

    def _relative(self, link: object) -> str | None:
        # nextLink is absolute; the client sends paths below the API root.
        if not isinstance(link, str) or not link:
            return None
        root = self._api.api_url + "/"
        if link.lower().startswith(root.lower()):
            return link[len(root) :]
        marker = link.find("/api/data/v9.2/")
        if marker < 0:
            raise RetriableError(f"Dataverse: unexpected next-page link {link[:120]!r}", code="UnreadableResponse")
        return link[marker + len("/api/data/v9.2/") :]

    # -- writes ---------------------------------------------------------------------------------
    def create_rows(self, entity_set: str, rows: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        """Create many rows: ``CreateMultiple`` where the table supports it, else ``$batch``.

        A row without its primary key gets a new GUID from us; the outcome's ``record_id`` is
        the new row's id (``None`` when the create failed).

        Raises:
            PermanentError: unknown table. ConfigurationError: the application user may not write.
            Row failures (bad values, throttling that outlasted the retries) are outcomes.
        """
        table = self._catalog.table(entity_set)
        outcomes: list[WriteOutcome | None] = [None] * len(rows)
        writes: list[_Write] = []
        for index, row in enumerate(rows):
            try:
                body = to_wire(table, row, creating=True)
                given = row.get(table.primary_key)
                record_id = guid_literal(str(given)) if given else str(uuid.uuid4())
            except PermanentError as error:
                outcomes[index] = WriteOutcome(ok=False, error=error)
                continue
            body[table.primary_key] = record_id
            writes.append(_Write(index, record_id, body, generated_id=not given))
        self._write(table, "CreateMultiple", "POST", writes, outcomes)
        self._settle_repeated_creates(table, writes, outcomes)
        return _complete(outcomes)

    def update_rows(self, entity_set: str, changes: Sequence[RecordChange]) -> list[WriteOutcome]:
        """Update many rows: ``UpdateMultiple`` where the table supports it, else ``$batch``.

        A change with an etag goes by ``$batch`` with ``If-Match`` (bulk messages carry no
        per-row condition); the others use ``If-Match: *`` there, so no update creates a row.

        Raises:
            PermanentError: unknown table. ConfigurationError: the application user may not write.
            Row failures (missing row, changed row, bad values) are outcomes.
        """
        table = self._catalog.table(entity_set)
        outcomes: list[WriteOutcome | None] = [None] * len(changes)
        plain: list[_Write] = []
        conditional: list[_Write] = []
        for index, change in enumerate(changes):
            try:
                record_id = guid_literal(change.record_id)
                body = to_wire(table, change.values, creating=False)
            except PermanentError as error:
                outcomes[index] = WriteOutcome(ok=False, record_id=change.record_id, error=error)
                continue
            write = _Write(index, record_id, body, etag=change.etag)
            (conditional if change.etag else plain).append(write)
        self._write(table, "UpdateMultiple", "PATCH", plain, outcomes)
        self._write(table, None, "PATCH", conditional, outcomes)
        return _complete(outcomes)

    def delete_rows(self, entity_set: str, ids: Sequence[str]) -> list[WriteOutcome]:
        """Delete many rows by ``$batch``; a row already gone counts as deleted.

        Raises:
            PermanentError: unknown table. ConfigurationError: the application user may not delete.
            Row failures are outcomes.
        """
        table = self._catalog.table(entity_set)
        outcomes: list[WriteOutcome | None] = [None] * len(ids)
        writes: list[_Write] = []
        for index, given in enumerate(ids):
            try:
                writes.append(_Write(index, guid_literal(given), {}))
            except PermanentError as error:
                outcomes[index] = WriteOutcome(ok=False, record_id=given, error=error)
        self._write(table, None, "DELETE", writes, outcomes)
        return _complete(outcomes)

    def _write(
        self,
        table: TableMetadata,
        message: str | None,
        method: str,
        writes: list[_Write],
        outcomes: list[WriteOutcome | None],
    ) -> None:
        if not writes:
            return
        key = (table.entity_set, message or "")
        if message is not None and self._bulk_supported.get(key, True):
            # Not knowing yet whether the table takes the message, every chunk tries it at once: a
            # table that does not answers at once and each chunk goes by $batch, while probing with
            # one chunk first would leave the other parallel slots idle for a whole chunk.
            chunks = _chunks(writes, self._bulk_size)
            results = self._parallel(lambda c: self._bulk_chunk(table, message, method, c), chunks)
        else:
            results = self._parallel(lambda c: self._batch_chunk(table, method, c), _chunks(writes, self._batch_size))
        for chunk_results in results:
            for index, outcome in chunk_results:
                outcomes[index] = outcome

    def _bulk_chunk(
        self, table: TableMetadata, message: str, method: str, chunk: list[_Write]
    ) -> list[tuple[int, WriteOutcome]]:
        key = (table.entity_set, message)
        odata_type = f"Microsoft.Dynamics.CRM.{table.logical_name}"
        targets = [{"@odata.type": odata_type, **write.body} for write in chunk]
        for write, target in zip(chunk, targets, strict=True):
            target[table.primary_key] = write.record_id
        try:
            self._api.send(
                "POST",
                f"{table.entity_set}/Microsoft.Dynamics.CRM.{message}",
                json={"Targets": targets},
                doing=f"{message} on {table.entity_set} ({len(chunk)} rows)",
            )
        except PermanentError as error:
            if error.code in _UNSUPPORTED:
                self._bulk_supported[key] = False
            # All-or-nothing: one bad row failed them all; row by row, the others still land.
            return self._batch_chunk(table, method, chunk)
        except RetriableError as error:
            return [(w.index, _failed(method, w, error)) for w in chunk]
        self._bulk_supported[key] = True
        return [(w.index, WriteOutcome(ok=True, record_id=w.record_id)) for w in chunk]

    def _batch_chunk(self, table: TableMetadata, method: str, chunk: list[_Write]) -> list[tuple[int, WriteOutcome]]:
        root = self._api.api_url
        operations = []
        for write in chunk:
            if method == "POST":
                operations.append(BatchOperation("POST", f"{root}/{table.entity_set}", write.body))
            else:
                url = f"{root}/{table.entity_set}({write.record_id})"
                # If-Match keeps a PATCH from creating a row that is not there (an upsert).
                headers = {"If-Match": write.etag or "*"} if method == "PATCH" else {}
                operations.append(BatchOperation(method, url, write.body if method == "PATCH" else None, headers))
        doing = f"writing {table.entity_set} in a batch of {len(chunk)}"
        content_type, payload = encode_batch(operations)
        try:
            response = self._api.send(
                "POST",
                "$batch",
                data=payload,
                headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
                doing=doing,
            )
            parts = decode_batch(response.headers.get("Content-Type", ""), response.content)
        except (PermanentError, RetriableError) as error:
            return [(w.index, _failed(method, w, error)) for w in chunk]
        except ValueError:
            unreadable = RetriableError(f"Dataverse: {doing}: unreadable batch response", code="UnreadableResponse")
            return [(w.index, _failed(method, w, unreadable)) for w in chunk]
        results = []
        for position, write in enumerate(chunk):
            if position >= len(parts):
                missing = RetriableError(f"Dataverse: {doing}: no response for this row", code="BatchIncomplete")
                results.append((write.index, _failed(method, write, missing)))
                continue
            results.append((write.index, self._part_outcome(method, write, parts[position], doing)))
        return results

    @staticmethod
    def _part_outcome(method: str, write: _Write, part: PartResponse, doing: str) -> WriteOutcome:
        if part.status < 400 or (method == "DELETE" and part.status == 404):
            return WriteOutcome(ok=True, record_id=write.record_id)
        return _failed(method, write, part_error(part.status, dict(part.headers), part.body, doing))

    def _settle_repeated_creates(
        self, table: TableMetadata, writes: list[_Write], outcomes: list[WriteOutcome | None]
    ) -> None:
        # A duplicate on an id we generated means an earlier attempt of this very call landed
        # (its response was lost and the request retried); any other duplicate is a real conflict.
        suspects = {
            w.record_id: w
            for w in writes
            if w.generated_id
            and (outcome := outcomes[w.index]) is not None
            and outcome.error is not None
            and outcome.error.code == DUPLICATE_RECORD
        }
        if not suspects:
            return
        for record_id in self.get_rows(table.entity_set, list(suspects), select=[table.primary_key]):
            outcomes[suspects[record_id].index] = WriteOutcome(ok=True, record_id=record_id)

    # -- parallelism ----------------------------------------------------------------------------
    def _parallel(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        # The client's gate bounds what is in flight; the pool only supplies that many threads.
        with ThreadPoolExecutor(max_workers=min(len(items), self._api.dop_hint)) as pool:
            return list(pool.map(work, items))


def _failed(method: str, write: _Write, error: SyncError) -> WriteOutcome:
    # A create that failed made no row, so it has no id to report.
    return WriteOutcome(ok=False, record_id=None if method == "POST" else write.record_id, error=error)


def _complete(outcomes: list[WriteOutcome | None]) -> list[WriteOutcome]:
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(outcomes), "every write has an outcome"
    return done


def _chunks(items: Sequence[_T], size: int) -> list[list[_T]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def _chunks_by_length(ids: list[str], clause_length: int) -> list[list[str]]:
    per_chunk = max(1, _FILTER_BUDGET // clause_length)
    return _chunks(ids, per_chunk)


def _window_params(query: WindowQuery) -> dict[str, str]:
    """The query string of a window read: the filter and-ed with the window and the echo rule."""
    echo = (
        [f"_modifiedby_value ne {guid_literal(query.exclude_modified_by)}"]
        if query.exclude_modified_by is not None
        else []
    )
    return window_params(
        query.filter, "modifiedon", query.modified_after, query.modified_until, order="modifiedon asc", also=echo
    )
