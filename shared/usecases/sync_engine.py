"""The sync engine: one pass of one mapping, page by page, in bulk.

For each page of source records it resolves couplings, lookups and destinations in bulk, asks
the pure :func:`shared.domain.record_sync.decide` what to do with each record, writes the
inserts and updates in bulk, and records the outcome on the couplings, in the job's counters
and in the error log. Memory is bounded by one page; API calls grow with pages, not records.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from shared.adapters.tables._keys import newest_first_key
from shared.domain.mapping import TableMapping
from shared.domain.record_sync import (
    Action,
    LookupTable,
    RecordDecision,
    SyncOptions,
    SyncRecord,
    Transform,
    coupling_after_failure,
    coupling_after_success,
    decide,
    source_value,
    unchanged_since_synced,
)
from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncErrorRecord
from shared.domain.watermarks import ReadWindow, parse_instant
from shared.errors import RetriableError, SyncError
from shared.mappings.transforms import LCY_LOOKUP_KEY, with_base_currency
from shared.odata import any_of
from shared.pages import next_link_of
from shared.ports import (
    BusinessCentralPort,
    Clock,
    CouplingStore,
    DataversePort,
    RecordChange,
    SyncErrorStore,
    SyncJobStore,
    WindowQuery,
    WriteOutcome,
)

__all__ = ["PassResult", "SyncEngine", "WindowRead"]

# How a row names the table a polymorphic lookup points at (the Web API's own annotation).
LOOKUP_TABLE_ANNOTATION = "Microsoft.Dynamics.CRM.lookuplogicalname"

Record = dict[str, Any]

# Records decided and written together: a page of up to 20,000 goes in slices of this many, so a
# slice's destination writes (CreateMultiple chunks in parallel up to x-ms-dop-hint, BC batches
# of 100) overlap the previous slice's coupling writes, and what is in flight stays small.
_SLICE = 1_000
# Slices whose writes may be in flight at once (their requests share the API's parallel slots).
_SLICES_WRITING = 2
# Written slices waiting for (or in) their bookkeeping. Where coupling writes are slower than the
# destination's (Table Storage under load), an unbounded queue grew by a slice (its records,
# the destination's answers) every few seconds for as long as the pass ran, so memory grew
# with the data; the pass cannot finish before its last slice is settled anyway.
_SLICES_SETTLING = 2
# The APIs' largest pages (BC API v2.0: 20,000 records; Dataverse Web API: 5,000 rows).
_BC_MAX_PAGE = 20_000
_DATAVERSE_MAX_PAGE = 5_000
# A pass reads another mapping's couplings whole once a slice needs this many of them, if that
# mapping has at most the limit (about 200 bytes each in memory).
_READ_WHOLE_FROM = 200
_READ_WHOLE_LIMIT = 100_000
# Dataverse's row version column: it grows with every change of a row.
_VERSION = "versionnumber"


class DerivedLookupKey(Protocol):
    """A lookup key that is no field of the referenced BC record but derived through other data."""

    def bc_ids(self, keys: Iterable[str]) -> dict[str, str]:
        """Key values → the referenced BC record's id."""
        ...

    def keys(self, bc_ids: Iterable[str]) -> dict[str, str]:
        """Referenced BC ids → their key value."""
        ...


class _CouplingPairs:
    """Lookups through another mapping's couplings, for one pass.

    A slice of a large pass looks up many records of another mapping at once (a full sync's 1,000
    contacts their 1,000 parent customers), with keys spread over that mapping's whole partition:
    keyed queries cost one request per 15 keys, each scanning the partition. The first time a
    slice needs ``_READ_WHOLE_FROM`` or more keys of a mapping, its pairs (BC id, Dataverse id) are
    read whole instead, in pages, once for the pass, if there are at most ``_READ_WHOLE_LIMIT`` of
    them (memory stays bounded); keys not among them are still looked up, so a coupling made
    since is found.
    """

    def __init__(self, couplings: CouplingStore) -> None:
        self._couplings = couplings
        self._whole: dict[str, dict[str, str] | None] = {}
        self._inverse: dict[str, dict[str, str]] = {}

    def _pairs(self, mapping: str, wanted: int) -> dict[str, str] | None:
        if mapping not in self._whole and wanted >= _READ_WHOLE_FROM:
            self._whole[mapping] = self._couplings.pairs(mapping, limit=_READ_WHOLE_LIMIT)
        return self._whole.get(mapping)

    def to_dataverse(self, mapping: str, bc_ids: set[str]) -> dict[str, str]:
        """BC id → coupled Dataverse id, for the coupled ones."""
        whole = self._pairs(mapping, len(bc_ids))
        found = {b: whole[b] for b in bc_ids if b in whole} if whole is not None else {}
        missing = bc_ids - found.keys()
        if missing:
            found.update({b: c.dataverse_id for b, c in self._couplings.get_many_by_bc_ids(mapping, missing).items()})
        return found

    def to_bc(self, mapping: str, dataverse_ids: set[str]) -> dict[str, str]:
        """Dataverse id → coupled BC id, for the coupled ones."""
        whole = self._pairs(mapping, len(dataverse_ids))
        if whole is not None and mapping not in self._inverse:
            self._inverse[mapping] = {d: b for b, d in whole.items()}
        inverse = self._inverse.get(mapping, {})
        found = {d: inverse[d] for d in dataverse_ids if d in inverse}
        missing = dataverse_ids - found.keys()
        if missing:
            found.update({d: c.bc_id for d, c in self._couplings.get_many_by_dataverse_ids(mapping, missing).items()})
        return found


@dataclass(frozen=True)
class WindowRead:
    """One pass's read of its source's changed records, planned before the run reads anything."""

    mapping: TableMapping
    direction: SyncDirection
    window: ReadWindow
    exclude_modified_by: str | None = None


@dataclass(frozen=True)
class PassResult:
    """What one pass did, and the newest source modification it saw (for the watermark)."""

    counters: JobCounters
    newest_seen: datetime | None
    next_link: str | None = None  # set when the pass stopped early: where it goes on


@dataclass
class _Side:
    """One system as a source or destination of a pass, for one mapping."""

    name: str  # "bc" | "dataverse"
    entity_set: str
    key: str
    modified_field: str
    filter: str | None
    read_pages: Any
    get_many: Any
    create_many: Any
    update_many: Any
    # Records by id with only their key, modification time and version (what bookkeeping needs after
    # a write); ``None``: whole records through ``get_many``.
    get_stamps: Any = None
    version_field: str = ""  # Dataverse's versionnumber: exact change detection within a second

    def version(self, record: Mapping[str, Any]) -> int | None:
        value = record.get(self.version_field) if self.version_field else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return int(value) if isinstance(value, str) and value.isdigit() else None

    def record_id(self, record: Mapping[str, Any]) -> str:
        return str(record[self.key]).lower()

    def modified_at(self, record: Mapping[str, Any]) -> datetime | None:
        if not self.modified_field:
            return None
        value = record.get(self.modified_field)
        return parse_instant(value) if isinstance(value, str) and value else None

    def label(self, record_id: str | None) -> str:
        return f"{self.name}:{self.entity_set}({record_id or 'new'})"


@dataclass(frozen=True)
class _PassContext:
    """What every record of a page shares: mapping, direction, both sides, job, time."""

    mapping: TableMapping
    direction: SyncDirection
    source: _Side
    destination: _Side
    job_id: str
    now: datetime

    def target_id(self, coupling: Coupling) -> str:
        """The destination id a coupling points at in this pass."""
        target = coupling.dataverse_id if self.direction is SyncDirection.TO_DATAVERSE else coupling.bc_id
        return target.lower()

    def new_coupling(self, source_id: str, destination_id: str) -> Coupling:
        """A coupling of a source record and the destination record just created for it."""
        if self.direction is SyncDirection.TO_DATAVERSE:
            return Coupling(self.mapping.name, source_id, destination_id)
        return Coupling(self.mapping.name, destination_id, source_id)


@dataclass
class _PageWork:
    """Decisions of one page and the bookkeeping to finish them."""

    source_records: dict[str, Record] = field(default_factory=dict)
    couplings: dict[str, Coupling] = field(default_factory=dict)
    destinations: dict[str, Record] = field(default_factory=dict)
    decisions: dict[str, RecordDecision] = field(default_factory=dict)
    coupling_updates: dict[str, Coupling] = field(default_factory=dict)  # written in bulk at the end


# What settling a slice yields: its counters and the newest source modification it held.
_Settled = tuple[JobCounters, datetime | None]


@dataclass
class _Decided:
    """A slice read and decided, waiting to be written."""

    context: _PassContext
    work: _PageWork
    newest: datetime | None


@dataclass
class _Prepared:
    """A slice decided and written to the destination, waiting for its bookkeeping."""

    context: _PassContext
    work: _PageWork
    inserts: list[str]
    outcomes: dict[str, WriteOutcome]
    newest: datetime | None = None


class _Pipeline:
    """Writes and settles slices behind their preparation, each stage on its own thread, in order.

    While slice N is read and decided on the calling thread, slices N-1 and N-2 are being written
    to the destination and older ones settled (couplings, errors, counters): the destination API
    is kept busy with writes instead of waiting for each slice's reads and bookkeeping, and as a
    slice's last write requests finish, the next slice's fill the free parallel slots (the API
    client's gate keeps the total at the service's degree of parallelism). ``submit`` waits while
    two slices are being written or more than two wait to be settled, so what is in flight stays
    a few slices however long the pass, and an error surfaces at the next slice (or on leaving).
    A slice whose write succeeded is always settled, even when a later one fails, or the next run
    would create its records again. Disabled, each slice is written and settled at
    once on the calling thread.
    """

    def __init__(self, *, enabled: bool) -> None:
        self._writer = ThreadPoolExecutor(max_workers=_SLICES_WRITING, thread_name_prefix="write") if enabled else None
        self._settler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="settle") if enabled else None
        self._writing: list[tuple[Future[_Prepared], Callable[[_Prepared], _Settled]]] = []
        self._settling: list[Future[_Settled]] = []
        self.counters = JobCounters()
        self.newest: datetime | None = None

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._written(keep=0)
        finally:
            try:
                self._settled(keep=0)
            finally:
                for pool in (self._writer, self._settler):
                    if pool is not None:
                        pool.shutdown(wait=True)

    def submit(self, write: Callable[[], _Prepared], settle: Callable[[_Prepared], _Settled]) -> None:
        if self._writer is None:
            self._add(settle(write()))
            return
        self._written(keep=_SLICES_WRITING - 1)
        self._settled(keep=_SLICES_SETTLING)
        self._writing.append((self._writer.submit(write), settle))

    def _written(self, *, keep: int) -> None:
        """Wait until at most ``keep`` slices are being written, queueing the settling of each
        written one in order. A failed write raises here, after every write before it is queued
        to settle; the writes after it still finish and settle before leaving."""
        while len(self._writing) > keep and self._settler is not None:
            future, settle = self._writing.pop(0)
            try:
                prepared = future.result()
            except BaseException:
                for later, later_settle in self._writing:
                    with contextlib.suppress(Exception):
                        self._settling.append(self._settler.submit(later_settle, later.result()))
                self._writing.clear()
                raise
            self._settling.append(self._settler.submit(settle, prepared))

    def _settled(self, *, keep: int) -> None:
        """Count settled slices in order, waiting until at most ``keep`` are left to settle; raise
        the first settling error (later slices still settle)."""
        while self._settling and (len(self._settling) > keep or self._settling[0].done()):
            self._add(self._settling.pop(0).result())

    def _add(self, result: _Settled) -> None:
        counters, newest = result
        self.counters += counters
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest


class SyncEngine:
    """Runs passes of mappings against the two API ports and the state stores."""

    def __init__(
        self,
        *,
        bc: BusinessCentralPort,
        dataverse: DataversePort,
        couplings: CouplingStore,
        jobs: SyncJobStore,
        errors: SyncErrorStore,
        clock: Clock,
        transforms: Mapping[str, Transform],
        mappings: Mapping[str, TableMapping],
        lookup_key: Callable[[str, str], str],
        base_currency_id: Callable[[], str | None],
        option_set_of: Callable[[str], Any] = lambda name: None,
        derived_keys: Mapping[str, DerivedLookupKey] | None = None,
        after_page: Callable[[], None] = lambda: None,
    ) -> None:
        # Called between the pages of a pass (composition: give what the page freed back to
        # the operating system, so a long read does not keep its worst page's memory).
        self._after_page = after_page
        self._derived_keys = dict(derived_keys or {})
        self._option_set_of = option_set_of
        self._mappings = mappings
        self._lookup_key = lookup_key
        self._base_currency_id = base_currency_id
        self._bc = bc
        self._dataverse = dataverse
        self._couplings = couplings
        self._jobs = jobs
        self._errors = errors
        self._clock = clock
        self._transforms = transforms

    # -- sides -----------------------------------------------------------------------------

    def _bc_side(self, mapping: TableMapping) -> _Side:
        return _Side(
            name="bc",
            entity_set=mapping.bc_entity_set,
            key=mapping.bc_key,
            modified_field=mapping.bc_modified_field,
            filter=mapping.bc_filter,
            read_pages=lambda window, exclude_user, resume_from, page_size: self._bc.list_records(
                mapping.bc_entity_set,
                filter=mapping.bc_filter,
                modified_after=window.since if window else None,
                modified_until=window.until if window else None,
                page_size=min(page_size or _BC_MAX_PAGE, _BC_MAX_PAGE),
                resume_from=resume_from,
            ),
            get_many=lambda ids: self._bc.get_records(mapping.bc_entity_set, ids),
            create_many=lambda rows: self._bc.create_records(mapping.bc_entity_set, rows),
            update_many=lambda changes: self._bc.update_records(mapping.bc_entity_set, changes),
        )

    def _dataverse_side(self, mapping: TableMapping) -> _Side:
        return _Side(
            name="dataverse",
            entity_set=mapping.dataverse_entity_set,
            key=mapping.dataverse_key,
            modified_field=mapping.dataverse_modified_field,
            filter=mapping.dataverse_filter,
            read_pages=lambda window, exclude_user, resume_from, page_size: self._dataverse.list_rows(
                mapping.dataverse_entity_set,
                filter=mapping.dataverse_filter,
                modified_after=window.since if window else None,
                modified_until=window.until if window else None,
                exclude_modified_by=exclude_user,
                page_size=min(page_size or _DATAVERSE_MAX_PAGE, _DATAVERSE_MAX_PAGE),
                resume_from=resume_from,
            ),
            get_many=lambda ids: self._dataverse.get_rows(mapping.dataverse_entity_set, ids),
            create_many=lambda rows: self._dataverse.create_rows(mapping.dataverse_entity_set, rows),
            update_many=lambda changes: self._dataverse.update_rows(mapping.dataverse_entity_set, changes),
            get_stamps=lambda ids: self._dataverse.get_rows(
                mapping.dataverse_entity_set,
                ids,
                select=[mapping.dataverse_key, mapping.dataverse_modified_field, _VERSION],
            ),
            version_field=_VERSION,
        )

    def _option_side(self, mapping: TableMapping, entity: str, attribute: str) -> _Side:
        """An option set playing the part of a table: its "rows" are ``{"value", "label"}``.

        Option sets are small and have no modification times, so every read lists them all and
        every record counts as changed (writes still happen only for differing labels).
        """

        def options() -> list[Record]:
            return self._dataverse.list_options(entity, attribute)

        def get_many(ids: Any) -> dict[str, Record]:
            wanted = {str(i) for i in ids}
            return {o["value"]: o for o in options() if o["value"] in wanted}

        def create_many(rows: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
            outcomes = []
            for row in rows:
                label = str(row.get("label") or "")
                try:
                    value = str(self._dataverse.insert_option(entity, attribute, label))
                except SyncError as error:
                    outcomes.append(WriteOutcome(ok=False, error=error))
                    continue
                outcomes.append(WriteOutcome(ok=True, record_id=value, record={"value": value, "label": label}))
            return outcomes

        def update_many(changes: Sequence[RecordChange]) -> list[WriteOutcome]:
            outcomes = []
            for change in changes:
                try:
                    self._dataverse.update_option(entity, attribute, int(change.record_id), str(change.values["label"]))
                except SyncError as error:
                    outcomes.append(WriteOutcome(ok=False, record_id=change.record_id, error=error))
                    continue
                outcomes.append(WriteOutcome(ok=True, record_id=change.record_id))
            return outcomes

        return _Side(
            name="dataverse",
            entity_set=mapping.dataverse_entity_set,
            key="value",
            modified_field="",
            filter=None,
            # An option set is read whole (it is small), so there is never a page to resume from.
            read_pages=lambda window, exclude_user, resume_from, page_size: iter([options()]),
            get_many=get_many,
            create_many=create_many,
            update_many=update_many,
        )

    def _sides(self, mapping: TableMapping, direction: SyncDirection) -> tuple[_Side, _Side]:
        option_set = self._option_set_of(mapping.name)
        dataverse = (
            self._option_side(mapping, option_set.entity, option_set.attribute)
            if option_set is not None
            else self._dataverse_side(mapping)
        )
        if direction is SyncDirection.TO_DATAVERSE:
            return self._bc_side(mapping), dataverse
        return dataverse, self._bc_side(mapping)

    @property
    def transforms(self) -> Mapping[str, Transform]:
        """The named value transforms field mappings use."""
        return self._transforms

    def is_option_mapping(self, mapping: TableMapping) -> bool:
        """Whether the mapping's Dataverse side is an option set."""
        return self._option_set_of(mapping.name) is not None

    def destination_rows(self, mapping: TableMapping, filter: str | None) -> list[Record]:
        """Dataverse rows of a mapping matching ``filter`` (an option mapping: all its options)."""
        option_set = self._option_set_of(mapping.name)
        if option_set is not None:
            return self._dataverse.list_options(option_set.entity, option_set.attribute)
        return [row for page in self._dataverse.list_rows(mapping.dataverse_entity_set, filter=filter) for row in page]

    def count_dataverse(self, mapping: TableMapping) -> int:
        """How many Dataverse rows (or options) a mapping has in its filter."""
        option_set = self._option_set_of(mapping.name)
        if option_set is not None:
            return len(self._dataverse.list_options(option_set.entity, option_set.attribute))
        return self._dataverse.count_rows(mapping.dataverse_entity_set, filter=mapping.dataverse_filter)

    # -- passes ----------------------------------------------------------------------------

    def read_windows(self, reads: Sequence[WindowRead]) -> dict[tuple[str, SyncDirection], Iterable[Sequence[Record]]]:
        """Many passes' changed records for the price of one request per side.

        The first page of every window comes from one ``$batch`` to each API; a window with more
        pages reads them as its pass gets there. Option-set sources (read whole, from metadata)
        are left to their pass. Keyed by (mapping name, direction).

        Raises:
            PermanentError, RetriableError, ConfigurationError: a read failed (any of them).
        """
        bc: list[WindowRead] = []
        dataverse: list[WindowRead] = []
        for read in reads:
            if read.direction is SyncDirection.TO_DATAVERSE:
                bc.append(read)
            elif not self.is_option_mapping(read.mapping):
                dataverse.append(read)
        found: dict[tuple[str, SyncDirection], Iterable[Sequence[Record]]] = {}
        if bc:
            queries = [
                WindowQuery(r.mapping.bc_entity_set, r.mapping.bc_filter, r.window.since, r.window.until) for r in bc
            ]
            found.update(
                zip(((r.mapping.name, r.direction) for r in bc), self._bc.list_records_many(queries), strict=True)
            )
        if dataverse:
            queries = [
                WindowQuery(
                    r.mapping.dataverse_entity_set,
                    r.mapping.dataverse_filter,
                    r.window.since,
                    r.window.until,
                    r.exclude_modified_by,
                )
                for r in dataverse
            ]
            found.update(
                zip(
                    ((r.mapping.name, r.direction) for r in dataverse),
                    self._dataverse.list_rows_many(queries),
                    strict=True,
                )
            )
        return found

    def run_pass(
        self,
        mapping: TableMapping,
        direction: SyncDirection,
        *,
        job_id: str,
        options: SyncOptions,
        window: ReadWindow | None,
        exclude_modified_by: str | None = None,
        pages: Iterable[Sequence[Record]] | None = None,
        resume_from: str | None = None,
        stop_after: float | None = None,
        page_size: int | None = None,
    ) -> PassResult:
        """Read every source page in ``window`` (``None``: everything) and sync it.

        ``pages``: the window's pages as ``read_windows`` already (began to) read them.
        ``resume_from``: a ``PassResult.next_link`` of an earlier call of the same pass, to go on
        from there. ``stop_after``: a ``time.monotonic()`` deadline; once past it, the pass stops
        after the page it is on (everything read so far settled) and returns where it stopped.
        ``page_size``: records per page read (default and most: each API's maximum).

        Raises:
            RetriableError, ConfigurationError: the source could not be read; pages already
                processed stay processed (their couplings and counters are stored).
        """
        source, _ = self._sides(mapping, direction)
        if pages is None:
            pages = source.read_pages(window, exclude_modified_by, resume_from, page_size)
        stopped_at: str | None = None
        pairs = _CouplingPairs(self._couplings)
        with _Pipeline(enabled=self._can_pipeline(mapping, direction)) as pipeline:
            for page in pages:
                self._sync_slices(
                    mapping, direction, page, job_id=job_id, options=options, pipeline=pipeline, pairs=pairs
                )
                link, large = next_link_of(page), len(page) > _SLICE
                del page  # the slices in flight hold what they need; the next page must not meet this one
                if large:
                    self._after_page()
                if stop_after is not None and link is not None and time.monotonic() >= stop_after:
                    stopped_at = link
                    break
        # Leaving the pipeline settled every slice read, so the pass can resume at ``stopped_at``.
        return PassResult(pipeline.counters, pipeline.newest, stopped_at)

    def sync_ids(
        self, mapping: TableMapping, direction: SyncDirection, ids: Sequence[str], *, job_id: str, options: SyncOptions
    ) -> JobCounters:
        """Sync the given source records (Synchronize Now, per-record pushes)."""
        source, _ = self._sides(mapping, direction)
        records = list(source.get_many([i.lower() for i in ids]).values())
        counters, _ = self.sync_records(mapping, direction, records, job_id=job_id, options=options)
        return counters

    def sync_records(
        self,
        mapping: TableMapping,
        direction: SyncDirection,
        records: Sequence[Record],
        *,
        job_id: str,
        options: SyncOptions,
    ) -> tuple[JobCounters, datetime | None]:
        """Sync one page of source records; returns the page's counters and newest modification."""
        with _Pipeline(enabled=self._can_pipeline(mapping, direction)) as pipeline:
            self._sync_slices(
                mapping,
                direction,
                records,
                job_id=job_id,
                options=options,
                pipeline=pipeline,
                pairs=_CouplingPairs(self._couplings),
            )
        return pipeline.counters, pipeline.newest

    @staticmethod
    def _can_pipeline(mapping: TableMapping, direction: SyncDirection) -> bool:
        # A slice's decisions read other mappings' couplings only; a mapping that looked up its
        # own couplings (none of the defaults does) would need the previous slice settled first.
        return all(f.lookup != mapping.name for f in mapping.fields_for(direction))

    def _sync_slices(
        self,
        mapping: TableMapping,
        direction: SyncDirection,
        records: Sequence[Record],
        *,
        job_id: str,
        options: SyncOptions,
        pipeline: _Pipeline,
        pairs: _CouplingPairs,
    ) -> None:
        """Prepare slice after slice on this thread while the pipeline settles the one before.

        A page of up to 20,000 BC records goes in slices, so one slice's destination writes
        overlap the previous slice's coupling writes, and the work in flight stays small.
        """
        source, _ = self._sides(mapping, direction)
        # In id order, a slice's couplings sit in one narrow row-key range of the coupling table.
        # The order is worked out from the ids alone and each slice taken from the page when its
        # turn comes: a page read lazily (``JsonPage``) is never held parsed whole.
        order: Sequence[int] = range(len(records))
        if len(records) > _SLICE:
            ids = [source.record_id(r) for r in records]
            order = sorted(order, key=ids.__getitem__)
            del ids
        for start in range(0, len(order), _SLICE):
            chunk = [records[i] for i in order[start : start + _SLICE]]
            prepared = self._prepare(mapping, direction, chunk, job_id=job_id, options=options, pairs=pairs)
            if prepared is not None:
                pipeline.submit(functools.partial(self._write_decided, prepared), self._finish)

    def _prepare(
        self,
        mapping: TableMapping,
        direction: SyncDirection,
        records: Sequence[Record],
        *,
        job_id: str,
        options: SyncOptions,
        pairs: _CouplingPairs,
    ) -> _Decided | None:
        """Read what a slice needs and decide every record (written by ``_write_decided``)."""
        source, destination = self._sides(mapping, direction)
        work = _PageWork(source_records={source.record_id(r): r for r in records})
        if not work.source_records:
            return None
        ids = list(work.source_records)
        if direction is SyncDirection.TO_DATAVERSE:
            work.couplings = self._couplings.get_many_by_bc_ids(mapping.name, ids)
        else:
            work.couplings = self._couplings.get_many_by_dataverse_ids(mapping.name, ids)
        # Records unchanged since their last sync are decided from the coupling alone: nothing
        # more is read for them.
        unchanged = {
            record_id
            for record_id, record in work.source_records.items()
            if unchanged_since_synced(
                work.couplings.get(record_id), direction, source.modified_at(record), options, source.version(record)
            )
        }
        destination_ids = [
            c.dataverse_id if direction is SyncDirection.TO_DATAVERSE else c.bc_id
            for record_id, c in work.couplings.items()
            if record_id not in unchanged
        ]
        work.destinations = (
            {k.lower(): v for k, v in destination.get_many(destination_ids).items()} if destination_ids else {}
        )
        lookups = self._lookups(
            mapping,
            direction,
            (r for record_id, r in work.source_records.items() if record_id not in unchanged),
            pairs,
        )

        for record_id, record in work.source_records.items():
            if record_id in unchanged:
                work.decisions[record_id] = RecordDecision(Action.UNCHANGED)
                continue
            coupling = work.couplings.get(record_id)
            target = None
            if coupling is not None:
                target_id = (
                    coupling.dataverse_id if direction is SyncDirection.TO_DATAVERSE else coupling.bc_id
                ).lower()
                found = work.destinations.get(target_id)
                target = (
                    SyncRecord(target_id, destination.modified_at(found), found, destination.version(found))
                    if found is not None
                    else None
                )
            work.decisions[record_id] = decide(
                mapping,
                direction,
                SyncRecord(record_id, source.modified_at(record), record, source.version(record)),
                coupling,
                target,
                lookups=lookups,
                transforms=self._transforms,
                options=options,
            )

        context = _PassContext(mapping, direction, source, destination, job_id, self._clock.now())
        seen = [m for m in (source.modified_at(r) for r in records) if m is not None]
        return _Decided(context, work, max(seen) if seen else None)

    def _write_decided(self, decided: _Decided) -> _Prepared:
        prepared = self._write(decided.context, decided.work)
        prepared.newest = decided.newest
        return prepared

    def _finish(self, prepared: _Prepared) -> _Settled:
        """Settle a written slice (couplings, errors) and add its counts to the job."""
        counters = self._settle_all(prepared)
        self._jobs.add_counts(prepared.context.mapping.name, prepared.context.job_id, counters)
        return counters, prepared.newest

    # -- lookups ---------------------------------------------------------------------------

    def _lookups(
        self, mapping: TableMapping, direction: SyncDirection, records: Any, pairs: _CouplingPairs
    ) -> LookupTable:
        """Resolve every lookup value the page needs through the referenced mappings' couplings.

        Values are taken as ``decide`` will see them (constant or source field, transformed). A
        lookup keyed by a BC *code* (e.g. a salesperson code) is translated through the
        referenced BC records; Dataverse's base currency stands for BC's blank currency (LCY).
        """
        records = list(records)
        to_dataverse: dict[str, dict[str, str]] = {}
        to_bc: dict[str, dict[str, str]] = {}
        needs_base_currency = False
        for field_mapping in mapping.fields_for(direction):
            if field_mapping.lookup is None:
                continue
            keys = set()
            for record in records:
                value = source_value(field_mapping, direction, record, self._transforms)
                if value == LCY_LOOKUP_KEY or (
                    direction is SyncDirection.FROM_DATAVERSE and field_mapping.lookup == "CURRENCY"
                ):
                    needs_base_currency = True
                if value not in (None, "", LCY_LOOKUP_KEY) and not _is_empty_guid(value):
                    keys.add(str(value))
            if not keys:
                continue
            key_field = self._lookup_key(mapping.name, field_mapping.bc_field) if field_mapping.bc_field else "id"
            if direction is SyncDirection.TO_DATAVERSE:
                to_dataverse.setdefault(field_mapping.lookup, {}).update(
                    self._bc_keys_to_dataverse(field_mapping.lookup, key_field, keys, pairs)
                )
            else:
                to_bc.setdefault(field_mapping.lookup, {}).update(
                    self._dataverse_ids_to_bc_keys(field_mapping.lookup, key_field, keys, pairs)
                )
        lookups = LookupTable(to_dataverse=to_dataverse, to_bc=to_bc)
        if needs_base_currency:
            base = self._base_currency_id()
            if base:
                lookups = with_base_currency(lookups, base)
        return lookups

    def _referenced(self, mapping_name: str) -> TableMapping | None:
        return self._mappings.get(mapping_name)

    def _bc_keys_to_dataverse(
        self, lookup: str, key_field: str, keys: set[str], pairs: _CouplingPairs
    ) -> dict[str, str]:
        """BC lookup values (ids, or codes of ``key_field``) → coupled Dataverse ids."""
        ids_by_key = {k.lower(): k.lower() for k in keys if _is_guid(k)} if key_field == "id" else {}
        referenced = self._referenced(lookup)
        if key_field in self._derived_keys:
            ids_by_key = self._derived_keys[key_field].bc_ids(keys)
        elif key_field != "id" and referenced is not None:
            filter_ = any_of(key_field, sorted(keys))
            for page in self._bc.list_records(referenced.bc_entity_set, filter=filter_, select=[key_field]):
                for record in page:
                    ids_by_key[str(record[key_field])] = str(record["id"]).lower()
        found = pairs.to_dataverse(lookup, set(ids_by_key.values()))
        return {key: found[bc_id] for key, bc_id in ids_by_key.items() if bc_id in found}

    def _dataverse_ids_to_bc_keys(
        self, lookup: str, key_field: str, keys: set[str], pairs: _CouplingPairs
    ) -> dict[str, str]:
        """Dataverse row ids (or option values) → the coupled BC value (its id, or its ``key_field`` code)."""
        option_lookup = self._option_set_of(lookup) is not None
        found = pairs.to_bc(lookup, {k.lower() for k in keys if option_lookup or _is_guid(k)})
        if key_field == "id":
            return found
        if key_field in self._derived_keys:
            derived = self._derived_keys[key_field].keys(set(found.values()))
            return {dv_id: derived[bc_id] for dv_id, bc_id in found.items() if bc_id in derived}
        referenced = self._referenced(lookup)
        if referenced is None:
            return {}
        records = self._bc.get_records(referenced.bc_entity_set, list(found.values()))
        codes = {k.lower(): str(v.get(key_field, "")) for k, v in records.items()}
        return {dv_id: codes[bc_id] for dv_id, bc_id in found.items() if codes.get(bc_id)}

    # -- carrying out decisions ------------------------------------------------------------

    def _write(self, context: _PassContext, work: _PageWork) -> _Prepared:
        """Write the slice's inserts and updates in bulk and read back what the writes did not return."""
        decisions = {k: self._typed(context, d) for k, d in work.decisions.items()}
        work.decisions = decisions
        inserts = [i for i, d in decisions.items() if d.action in {Action.INSERT, Action.RESTORE}]
        modifies = [i for i, d in decisions.items() if d.action is Action.MODIFY]
        outcomes: dict[str, WriteOutcome] = {}
        if inserts:
            created = context.destination.create_many([dict(decisions[i].changes) for i in inserts])
            outcomes.update(zip(inserts, created, strict=True))
        if modifies:
            changes = []
            for record_id in modifies:
                target_id = context.target_id(work.couplings[record_id])
                current = work.destinations.get(target_id, {})
                changes.append(RecordChange(target_id, dict(decisions[record_id].changes), current.get("@odata.etag")))
            outcomes.update(zip(modifies, context.destination.update_many(changes), strict=True))
        return _Prepared(context, work, inserts, outcomes)

    def _settle_all(self, prepared: _Prepared) -> JobCounters:
        """Couple what was created and record every decision's result; returns the slice's counters."""
        context, work, inserts = prepared.context, prepared.work, prepared.inserts
        outcomes, decisions = prepared.outcomes, prepared.work.decisions
        # Read back here, not right after the write, so the next slice's writes need not wait.
        written = self._written_records(context.destination, outcomes)
        new_couplings = self._couple_created(context, work, inserts, outcomes, written)

        counts: dict[str, int] = {}
        for record_id, decision in decisions.items():
            if record_id in new_couplings:
                refused = new_couplings[record_id]
                if refused is not None:
                    self._fail(context, record_id, work.couplings.get(record_id), refused.message)
                action = Action.FAIL if refused is not None else decision.action
            else:
                action = self._settle(
                    context, work, record_id, decision, outcome=outcomes.get(record_id), written=written
                )
            if action.counter:
                counts[action.counter] = counts.get(action.counter, 0) + 1
        # The timestamps of every written or unchanged pair, in bulk; a pair another worker
        # changed meanwhile is retried next run (its source still looks changed).
        updates = list(work.coupling_updates.items())
        if updates:
            results = self._couplings.update_many([c for _, c in updates])
            for (record_id, _), result in zip(updates, results, strict=True):
                if isinstance(result, SyncError):
                    action = decisions[record_id].action
                    if action.counter:
                        counts[action.counter] -= 1
                    counts["failed"] = counts.get("failed", 0) + 1
                    self._fail(context, record_id, None, result.message)
        return JobCounters(**counts)

    def _typed(self, context: _PassContext, decision: RecordDecision) -> RecordDecision:
        """Shape lookup values for Dataverse: option values as integers, lookups with their table.

        Option values travel as text through couplings; Dataverse wants integers. A lookup that
        can point at several tables (``parentcustomerid``) must say which one; the referenced
        mapping knows.
        """
        if context.direction is not SyncDirection.TO_DATAVERSE or not decision.changes:
            return decision
        changes = dict(decision.changes)
        for field_mapping in context.mapping.fields_for(context.direction):
            name = field_mapping.dataverse_field
            if field_mapping.lookup is None or name not in changes:
                continue
            if self._option_set_of(field_mapping.lookup) is not None:
                value = changes[name]
                if isinstance(value, str) and value.lstrip("-").isdigit():
                    changes[name] = int(value)
                continue
            referenced = self._referenced(field_mapping.lookup)
            if referenced is not None and changes[name] is not None:
                changes[f"{name}@{LOOKUP_TABLE_ANNOTATION}"] = referenced.dataverse_entity_set
        return replace(decision, changes=changes)

    def _couple_created(
        self,
        context: _PassContext,
        work: _PageWork,
        inserts: Sequence[str],
        outcomes: Mapping[str, WriteOutcome],
        written: Mapping[str, Record],
    ) -> dict[str, SyncError | None]:
        """Couple every record created on the destination, in bulk; per record: ``None`` or the refusal."""
        created = [i for i in inserts if outcomes[i].ok and outcomes[i].record_id]
        pending = []
        for record_id in created:
            new_id = str(outcomes[record_id].record_id).lower()
            old = work.couplings.get(record_id)
            if old is not None:  # RESTORE: the old pair points at a deleted record
                self._couplings.uncouple(context.mapping.name, old.bc_id)
            pending.append(
                coupling_after_success(
                    context.new_coupling(record_id, new_id),
                    context.direction,
                    source_modified_at=context.source.modified_at(work.source_records[record_id]),
                    destination_modified_at=context.destination.modified_at(written.get(new_id, {})),
                    both_modified=False,
                    source_version=context.source.version(work.source_records[record_id]),
                    destination_version=context.destination.version(written.get(new_id, {})),
                    job_id=context.job_id,
                    now=context.now,
                )
            )
        results = self._couplings.couple_many(pending) if pending else []
        return {
            record_id: (result if isinstance(result, SyncError) else None)
            for record_id, result in zip(created, results, strict=True)
        }

    def _settle(
        self,
        context: _PassContext,
        work: _PageWork,
        record_id: str,
        decision: RecordDecision,
        *,
        outcome: WriteOutcome | None,
        written: Mapping[str, Record],
    ) -> Action:
        """Record one decision's result on the coupling and in the error log; returns what counts."""
        coupling = work.couplings.get(record_id)
        if outcome is not None and not outcome.ok:
            self._fail(context, record_id, coupling, outcome.error.message if outcome.error else "the write failed")
            return Action.FAIL
        source_at = context.source.modified_at(work.source_records[record_id])
        try:
            if decision.action in {Action.MODIFY, Action.UNCHANGED} and coupling is not None:
                target_id = context.target_id(coupling)
                after = written.get(target_id) or work.destinations.get(target_id, {})
                updated = coupling_after_success(
                    coupling,
                    context.direction,
                    source_modified_at=source_at,
                    destination_modified_at=context.destination.modified_at(after),
                    both_modified=decision.both_modified,
                    job_id=context.job_id,
                    now=context.now,
                    written=decision.action is Action.MODIFY,
                    source_version=context.source.version(work.source_records[record_id]),
                    destination_version=context.destination.version(after),
                )
                if updated != coupling:
                    work.coupling_updates[record_id] = updated
            elif decision.action is Action.UNCOUPLE and coupling is not None:
                self._couplings.uncouple(context.mapping.name, coupling.bc_id)
            elif decision.action is Action.FAIL:
                self._fail(context, record_id, coupling, decision.message)
        except SyncError as error:
            # The write landed but its bookkeeping did not; the record is retried next run and the
            # coupling timestamps (or the match on the new record) make that an update, not a duplicate.
            self._fail(context, record_id, coupling, error.message)
            return Action.FAIL
        return decision.action

    def _written_records(self, destination: _Side, outcomes: Mapping[str, WriteOutcome]) -> dict[str, Record]:
        """The destination records as they are after the writes, keyed by destination id."""
        written: dict[str, Record] = {}
        missing = []
        for outcome in outcomes.values():
            if not outcome.ok or outcome.record_id is None:
                continue
            if outcome.record is not None and destination.modified_field in outcome.record:
                written[outcome.record_id.lower()] = outcome.record
            else:
                missing.append(outcome.record_id)
        if missing:
            # One bulk read for the modification times the bulk write did not return.
            read = destination.get_stamps or destination.get_many
            written.update({k.lower(): v for k, v in read(missing).items()})
        return written

    def _fail(self, context: _PassContext, record_id: str, coupling: Coupling | None, message: str) -> None:
        if coupling is not None:
            failed = coupling_after_failure(
                coupling, context.direction, message=message, job_id=context.job_id, now=context.now
            )
            # Another worker may have touched the coupling; the failure is still logged below.
            with contextlib.suppress(RetriableError):
                self._couplings.update(failed)
        target_id = context.target_id(coupling) if coupling is not None else None
        self._errors.add(
            SyncErrorRecord(
                error_id=newest_first_key(context.now, uuid.uuid4().hex[:12]),
                mapping=context.mapping.name,
                job_id=context.job_id,
                source=context.source.label(record_id),
                destination=context.destination.label(target_id),
                message=message,
                detail=f"{context.direction.value} pass of {context.mapping.name}",
                created_at=context.now,
            )
        )


def _is_guid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


def _is_empty_guid(value: Any) -> bool:
    return isinstance(value, str) and value == "00000000-0000-0000-0000-000000000000"
