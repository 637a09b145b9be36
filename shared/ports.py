"""Ports: the small protocols use-cases depend on, one per external system or store.

Adapters in ``shared/adapters`` implement them; ``shared/composition`` picks which. Methods
raise only the categories of ``shared.errors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain.connection import TablePrivilege
from shared.domain.full_sync import FullSyncRun, ReviewLine
from shared.domain.leases import Lease
from shared.domain.state import (
    Coupling,
    JobCounters,
    JobStatus,
    SyncDirection,
    SyncErrorRecord,
    SyncJob,
    Watermark,
)
from shared.errors import SyncError
from shared.pages import Page, Record

__all__ = [
    "BusinessCentralPort",
    "BusinessCentralQueries",
    "Clock",
    "CouplingStore",
    "DataversePort",
    "FullSyncStore",
    "HealthProbe",
    "MessageQueue",
    "Page",
    "RecordChange",
    "SyncErrorStore",
    "SyncJobStore",
    "WatermarkStore",
    "WindowQuery",
    "WriteOutcome",
]


@dataclass(frozen=True)
class RecordChange:
    """One update in a bulk write: which record, the values to set, and (BC) the etag read."""

    record_id: str
    values: Mapping[str, Any]
    etag: str | None = None  # BC requires If-Match; None sends "*" (overwrite whatever is there)


@dataclass(frozen=True)
class WindowQuery:
    """One table's changed records for a pass: what ``list_records`` / ``list_rows`` take."""

    entity_set: str
    filter: str | None = None
    modified_after: datetime | None = None
    modified_until: datetime | None = None
    exclude_modified_by: str | None = None  # Dataverse only: the echo rule


@dataclass(frozen=True)
class WriteOutcome:
    """The result of one write of a bulk call, in the order the writes were given.

    ``record`` is the record as the API returned it after the write (BC returns it; Dataverse
    bulk messages do not, so it is ``None`` there and callers re-read in bulk when they need
    the new modification time). ``error`` is already categorized.
    """

    ok: bool
    record_id: str | None = None
    record: Record | None = None
    error: SyncError | None = field(default=None, compare=False)


class Clock(Protocol):
    """The time source; tests pass a fixed one."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class CouplingStore(Protocol):
    """Couplings between BC records and Dataverse rows, per mapping, resolvable both ways."""

    def get_by_bc_id(self, mapping: str, bc_id: str) -> Coupling | None:
        """The coupling of a BC record, or ``None``."""
        ...

    def get_by_dataverse_id(self, mapping: str, dataverse_id: str) -> Coupling | None:
        """The coupling of a Dataverse row, or ``None``."""
        ...

    def get_many_by_bc_ids(self, mapping: str, bc_ids: Iterable[str]) -> dict[str, Coupling]:
        """Couplings of many BC records at once, keyed by BC id; uncoupled ids are absent."""
        ...

    def get_many_by_dataverse_ids(self, mapping: str, dataverse_ids: Iterable[str]) -> dict[str, Coupling]:
        """Couplings of many Dataverse rows at once, keyed by Dataverse id."""
        ...

    def pairs(self, mapping: str, *, limit: int) -> dict[str, str] | None:
        """BC id → Dataverse id of every coupling of ``mapping``; ``None`` when there are more than ``limit``."""
        ...

    def couple(self, coupling: Coupling) -> Coupling:
        """Store a new coupling; refuses (PermanentError ``CouplingConflict``) if either side is coupled."""
        ...

    def couple_many(self, couplings: Sequence[Coupling]) -> list[Coupling | SyncError]:
        """Store many new couplings at once; each gets the stored coupling or the error that refused it."""
        ...

    def update(self, coupling: Coupling) -> Coupling:
        """Write a changed coupling read earlier; RetriableError if it changed meanwhile."""
        ...

    def update_many(self, couplings: Sequence[Coupling]) -> list[Coupling | SyncError]:
        """Write many changed couplings; each gets the stored coupling or the error that refused it."""
        ...

    def uncouple(self, mapping: str, bc_id: str) -> Coupling | None:
        """Remove a coupling; returns what was removed, ``None`` if it was not coupled."""
        ...

    def list_couplings(
        self, mapping: str, *, skipped_only: bool = False, failed_toward: SyncDirection | None = None
    ) -> Iterator[Coupling]:
        """Couplings of a mapping, lazily; only skipped ones, or only those failed toward a side."""
        ...


class SyncJobStore(Protocol):
    """Sync job rows with their counters."""

    def start(self, job: SyncJob) -> SyncJob:
        """Store a new running job."""
        ...

    def add_counts(self, mapping: str, job_id: str, counts: JobCounters) -> SyncJob:
        """Add to a job's counters; safe when several workers report into one job at once."""
        ...

    def finish(self, mapping: str, job_id: str, status: JobStatus, message: str = "") -> SyncJob:
        """Mark a job finished."""
        ...

    def get(self, mapping: str, job_id: str) -> SyncJob | None:
        """One job, or ``None``."""
        ...

    def list_jobs(self, mapping: str | None = None, *, limit: int = 100) -> list[SyncJob]:
        """Newest jobs first, of one mapping or of all."""
        ...


class SyncErrorStore(Protocol):
    """Per-record sync errors."""

    def add(self, error: SyncErrorRecord) -> None:
        """Store one error row."""
        ...

    def list_errors(self, mapping: str | None = None, *, limit: int = 100) -> list[SyncErrorRecord]:
        """Newest errors first, of one mapping or of all."""
        ...


class WatermarkStore(Protocol):
    """Per-mapping, per-pass read positions."""

    def get(self, mapping: str, pass_name: str) -> Watermark | None:
        """The stored watermark, or ``None`` before the first run."""
        ...

    def advance(self, watermark: Watermark) -> Watermark:
        """Store a watermark; never moves one backwards; RetriableError if it changed meanwhile."""
        ...


class HealthProbe(Protocol):
    """One dependency the health check reports on."""

    name: str

    def check(self) -> None:
        """Return if the dependency answers; raise a ``shared.errors`` category otherwise."""
        ...


class BusinessCentralPort(Protocol):
    """The BC API v2.0, company-scoped, as the sync engine needs it.

    Records are the API's JSON objects (camelCase, with ``id``, ``@odata.etag`` and
    ``lastModifiedDateTime``). Every method raises only ``shared.errors`` categories; bulk
    writes report per-record failures in their outcomes instead of raising.
    """

    def list_records(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        modified_after: datetime | None = None,
        modified_until: datetime | None = None,
        page_size: int = 20_000,
        resume_from: str | None = None,
    ) -> Iterator[Sequence[Record]]:
        """Pages of records (``filter`` and-ed with the modification window), oldest change first.

        Each page has a ``next_link`` (``shared.pages``); ``resume_from`` (such a link) continues a
        read there."""
        ...

    def list_records_many(self, queries: Sequence[WindowQuery]) -> list[Iterator[Sequence[Record]]]:
        """Several ``list_records`` at once: every first page from one ``$batch``, later pages as read."""
        ...

    def get_records(
        self, entity_set: str, ids: Iterable[str], *, select: Sequence[str] | None = None
    ) -> dict[str, Record]:
        """Records by id, in as few requests as the API allows; missing ids are absent."""
        ...

    def count_records(self, entity_set: str, *, filter: str | None = None) -> int:
        """How many records match."""
        ...

    def create_records(self, entity_set: str, records: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        """Create many records ($batch of up to 100 per request)."""
        ...

    def update_records(self, entity_set: str, changes: Sequence[RecordChange]) -> list[WriteOutcome]:
        """Update many records ($batch of up to 100 per request, If-Match per record)."""
        ...

    def delete_records(self, entity_set: str, ids: Sequence[str]) -> list[WriteOutcome]:
        """Delete many records; an id already gone counts as deleted."""
        ...


class DataversePort(Protocol):
    """The Dataverse Web API v9.2 as the sync engine needs it.

    Rows are keyed by attribute logical names. Lookups are read and written as their logical
    name holding the referenced row's GUID (``transactioncurrencyid``); the adapter turns them
    into ``_x_value`` on read and ``nav@odata.bind`` on write. Every method raises only
    ``shared.errors`` categories; bulk writes report per-row failures in their outcomes.
    """

    def list_rows(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        modified_after: datetime | None = None,
        modified_until: datetime | None = None,
        exclude_modified_by: str | None = None,
        page_size: int = 5_000,
        resume_from: str | None = None,
    ) -> Iterator[Sequence[Record]]:
        """Pages of rows (``filter`` and-ed with the window; optionally not last modified by a user).

        Each page has a ``next_link`` (``shared.pages``); ``resume_from`` (such a link) continues a
        read there."""
        ...

    def list_rows_many(self, queries: Sequence[WindowQuery]) -> list[Iterator[Sequence[Record]]]:
        """Several ``list_rows`` at once: every first page from one ``$batch``, later pages as read."""
        ...

    def get_rows(
        self, entity_set: str, ids: Iterable[str], *, select: Sequence[str] | None = None
    ) -> dict[str, Record]:
        """Rows by primary key, in as few requests as the API allows; missing ids are absent."""
        ...

    def count_rows(self, entity_set: str, *, filter: str | None = None) -> int:
        """How many rows match."""
        ...

    def create_rows(self, entity_set: str, rows: Sequence[Mapping[str, Any]]) -> list[WriteOutcome]:
        """Create many rows: CreateMultiple where the table supports it, else $batch."""
        ...

    def update_rows(self, entity_set: str, changes: Sequence[RecordChange]) -> list[WriteOutcome]:
        """Update many rows: UpdateMultiple where the table supports it, else $batch."""
        ...

    def delete_rows(self, entity_set: str, ids: Sequence[str]) -> list[WriteOutcome]:
        """Delete many rows; a row already gone counts as deleted."""
        ...

    def primary_key(self, entity_set: str) -> str:
        """The primary key attribute of an entity set (from metadata)."""
        ...

    def application_user_id(self) -> str:
        """The connector's own user id (WhoAmI), to leave out its own writes (the echo rule)."""
        ...

    def list_options(self, entity: str, attribute: str) -> list[dict[str, Any]]:
        """A local option set's options as ``{"value": "<int as text>", "label"}``."""
        ...

    def insert_option(self, entity: str, attribute: str, label: str) -> int:
        """Add an option to a local option set; returns its value."""
        ...

    def update_option(self, entity: str, attribute: str, value: int, label: str) -> None:
        """Relabel an option."""
        ...

    def base_currency_id(self) -> str | None:
        """The organisation's base currency (``organizations``' ``basecurrencyid``), which stands for BC's LCY."""
        ...


class MessageQueue(Protocol):
    """Sends work to the connector's own Service Bus queues."""

    def send(self, queue: str, body: Mapping[str, Any], *, message_id: str | None = None) -> None:
        """Send one JSON message; ``message_id`` lets Service Bus drop a duplicate send."""
        ...


class LeaseStore(Protocol):
    """Short, renewable, exclusive leases on named resources (a mapping's writes)."""

    def get(self, name: str) -> Lease | None:
        """The lease row as stored (held or expired), or ``None``."""
        ...

    def try_acquire(self, name: str, holder: str, period: timedelta, now: datetime) -> Lease | None:
        """Take the lease if it is free, expired or already ``holder``'s; ``None`` otherwise."""
        ...

    def renew(self, lease: Lease, period: timedelta, now: datetime) -> Lease | None:
        """Extend a held lease; ``None`` if it was lost."""
        ...

    def release(self, lease: Lease) -> None:
        """Give the lease back."""
        ...


class FullSyncStore(Protocol):
    """Full synchronization runs and their review lines."""

    def create_run(self, run: FullSyncRun, lines: list[ReviewLine]) -> None:
        """Store a new run with its lines, atomically."""
        ...

    def get_run(self, run_id: str) -> tuple[FullSyncRun, list[ReviewLine]] | None:
        """A run and its lines in review order, or ``None``."""
        ...

    def running_runs(self) -> list[FullSyncRun]:
        """Runs not finished yet."""
        ...

    def update_line(self, run_id: str, line: ReviewLine, *, order: int) -> ReviewLine | None:
        """Conditional write of a line read earlier; ``None`` when another worker changed it first."""
        ...

    def finish_run(self, run_id: str, finished_at: datetime) -> None:
        """Mark a run finished."""
        ...


class BusinessCentralQueries(Protocol):
    """BC API v2.0 reads beyond the sync engine's: documents with their lines (``$expand``), any filter."""

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        expand: Mapping[str, Sequence[str]] | None = None,
        page_size: int = 20_000,
    ) -> Iterator[Sequence[Record]]:
        """Pages of records; ``expand`` maps a collection navigation to the properties read of it."""
        ...


class DataverseChecks(Protocol):
    """What the connection test asks Dataverse."""

    def who_am_i(self) -> str:
        """The connector's user id; raises when there is no token or no application user."""
        ...

    def missing_privileges(self, user_id: str, needed: Sequence[TablePrivilege]) -> list[str]:
        """Names of the needed table privileges the user lacks."""
        ...


class BusinessCentralChecks(Protocol):
    """What the connection test asks BC."""

    def companies(self) -> dict[str, str]:
        """Company id → name of every company the app may use; raises when the app is refused."""
        ...

    def unreadable_pages(self, company_id: str, pages: Sequence[str]) -> dict[str, str]:
        """Page → BC's message for each API page the app may not read."""
        ...
