"""Ports: the small protocols use-cases depend on, one per external system or store.

Adapters in ``shared/adapters`` implement them; ``shared/composition`` picks which. Methods
raise only the categories of ``shared.errors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol

from shared.domain.state import Coupling, JobCounters, JobStatus, SyncErrorRecord, SyncJob, Watermark

__all__ = ["Clock", "CouplingStore", "HealthProbe", "SyncErrorStore", "SyncJobStore", "WatermarkStore"]


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

    def couple(self, coupling: Coupling) -> Coupling:
        """Store a new coupling; refuses (PermanentError ``CouplingConflict``) if either side is coupled."""
        ...

    def update(self, coupling: Coupling) -> Coupling:
        """Write a changed coupling read earlier; RetriableError if it changed meanwhile."""
        ...

    def uncouple(self, mapping: str, bc_id: str) -> Coupling | None:
        """Remove a coupling; returns what was removed, ``None`` if it was not coupled."""
        ...

    def list_couplings(self, mapping: str, *, skipped_only: bool = False) -> Iterator[Coupling]:
        """All couplings of a mapping, lazily, page by page."""
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
