"""Durable-state records: couplings, sync jobs and their counters, sync errors, watermarks.

These are what the Table Storage adapters read and write; nothing here knows about tables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

__all__ = [
    "Coupling",
    "JobCounters",
    "JobStatus",
    "JobType",
    "SyncDirection",
    "SyncErrorRecord",
    "SyncJob",
    "Watermark",
]


class SyncDirection(enum.StrEnum):
    """Which way data flows, named from Business Central's point of view like the built-in one."""

    TO_DATAVERSE = "toDataverse"  # BC → Sales ("ToIntegrationTable")
    FROM_DATAVERSE = "fromDataverse"  # Sales → BC ("FromIntegrationTable")
    BIDIRECTIONAL = "bidirectional"


@dataclass(frozen=True)
class Coupling:
    """One BC record coupled to one Dataverse row under one mapping.

    The timestamps are each side's modification time at the last successful sync; a later
    modification on a side means that side changed since (behaviour reference §2.1, §2.5).

    Attributes:
        recheck_in_sales: the BC pass wrote the Sales row while it had changed there too. The
            connector is then its last modifier, so the echo rule would keep the Sales pass from
            reading it back; the flag makes that pass read it by id and carry what is left over
            (the merge of behaviour reference §2.5 step 10).
        etag: concurrency token of the stored row, ``None`` for a coupling not yet stored. Not
            part of equality: two reads of the same coupling state compare equal.
    """

    mapping: str
    bc_id: str
    dataverse_id: str
    bc_modified_at: datetime | None = None
    dataverse_modified_at: datetime | None = None
    last_synced_at: datetime | None = None
    last_result_to_bc: str | None = None  # "Success" | "Failure" (built-in "Last Synch. Result")
    last_result_to_dataverse: str | None = None  # "Last Synch. CRM Result"
    last_job_id: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    skipped: bool = False
    recheck_in_sales: bool = False
    dataverse_version: int | None = None  # the Sales row's versionnumber at the last sync
    etag: str | None = field(default=None, compare=False)

    def with_changes(self, **changes: object) -> Coupling:
        """Return a copy with ``changes`` applied, keeping the etag for a conditional write."""
        return replace(self, **changes)  # type: ignore[arg-type]


class JobType(enum.StrEnum):
    """What a sync job row records (built-in table 5338 "Type")."""

    SYNCHRONIZATION = "Synchronization"
    COUPLING = "Coupling"
    UNCOUPLING = "Uncoupling"


class JobStatus(enum.StrEnum):
    """Lifecycle of a job row."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobCounters:
    """Record counters of one job (built-in table 5338)."""

    inserted: int = 0
    modified: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    coupled: int = 0
    uncoupled: int = 0

    def __add__(self, other: JobCounters) -> JobCounters:
        return JobCounters(
            inserted=self.inserted + other.inserted,
            modified=self.modified + other.modified,
            deleted=self.deleted + other.deleted,
            unchanged=self.unchanged + other.unchanged,
            skipped=self.skipped + other.skipped,
            failed=self.failed + other.failed,
            coupled=self.coupled + other.coupled,
            uncoupled=self.uncoupled + other.uncoupled,
        )

    @property
    def is_idle(self) -> bool:
        """A run that changed nothing and failed nothing (the built-in "idle rule")."""
        return self.inserted + self.modified + self.deleted + self.failed == 0


@dataclass(frozen=True)
class SyncJob:
    """One pass of one mapping, or one coupling/uncoupling job."""

    job_id: str
    mapping: str
    job_type: JobType
    direction: SyncDirection
    started_at: datetime
    status: JobStatus = JobStatus.RUNNING
    finished_at: datetime | None = None
    message: str = ""
    counters: JobCounters = JobCounters()
    etag: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SyncErrorRecord:
    """One failed record of one job, as an administrator reads it."""

    error_id: str
    mapping: str
    job_id: str
    source: str  # e.g. "bc:customers(…)" or "dataverse:accounts(…)"
    destination: str
    message: str
    detail: str
    created_at: datetime


@dataclass(frozen=True)
class Watermark:
    """How far one pass of one mapping has read its source.

    ``value`` is the source's own modification timestamp, kept as the exact ISO 8601 text the
    source returned so no precision is lost in a round trip through storage.
    """

    mapping: str
    pass_name: str  # "bc" (BC → Sales pass) or "dataverse" (Sales → BC pass)
    value: str
    state_version: int = 1
    etag: str | None = field(default=None, compare=False)
