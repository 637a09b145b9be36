"""Sync job rows in Table Storage, newest first, with counters safe under concurrent workers.

Partition = mapping name; row key = the job id, which starts with an inverted timestamp so a
partition lists newest first. Counter updates are read-add-write cycles conditional on the
row's etag, retried on a lost race, so two workers finishing pages of one job at once never
lose each other's counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables._errors import table_errors
from shared.adapters.tables._keys import encode_key, newest_first_key
from shared.domain.state import JobCounters, JobStatus, JobType, SyncDirection, SyncJob
from shared.errors import PermanentError, RetriableError

_COUNTER_FIELDS = [f.name for f in fields(JobCounters)]
_MAX_RACE_RETRIES = 20


def new_job_id(started_at: datetime) -> str:
    """A job id that sorts newest first and is unique across workers."""
    return newest_first_key(started_at, uuid.uuid4().hex[:12])


def _entity(job: SyncJob) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": encode_key(job.mapping),
        "RowKey": job.job_id,
        "Mapping": job.mapping,
        "JobType": job.job_type.value,
        "Direction": job.direction.value,
        "StartedAt": job.started_at,
        "FinishedAt": job.finished_at,
        "Status": job.status.value,
        "Message": job.message,
    }
    for name in _COUNTER_FIELDS:
        entity[name.capitalize()] = getattr(job.counters, name)
    return entity


def _job(entity: Any) -> SyncJob:
    finished = entity.get("FinishedAt")
    return SyncJob(
        job_id=entity["RowKey"],
        mapping=entity["Mapping"],
        job_type=JobType(entity["JobType"]),
        direction=SyncDirection(entity["Direction"]),
        started_at=entity["StartedAt"],
        finished_at=finished if isinstance(finished, datetime) else None,
        status=JobStatus(entity["Status"]),
        message=entity.get("Message") or "",
        counters=JobCounters(**{n: int(entity.get(n.capitalize()) or 0) for n in _COUNTER_FIELDS}),
        etag=entity.metadata["etag"],
    )


class TableSyncJobStore:
    """``SyncJobStore`` on Azure Table Storage."""

    def __init__(self, table: TableClient, clock: Any) -> None:
        self._table = table
        self._clock = clock

    def start(self, job: SyncJob) -> SyncJob:
        """Store a new running job. Raises RetriableError/ConfigurationError."""
        with table_errors(f"starting job {job.job_id}"):
            result = self._table.create_entity(_entity(job))
        return replace(job, etag=result["etag"])

    def add_counts(self, mapping: str, job_id: str, counts: JobCounters) -> SyncJob:
        """Add ``counts`` to the job's counters, retrying the conditional write on a lost race.

        Raises:
            PermanentError: the job does not exist.
            RetriableError: the row stayed contended beyond the retry budget.
        """
        return self._modify(mapping, job_id, lambda job: replace(job, counters=job.counters + counts))

    def finish(self, mapping: str, job_id: str, status: JobStatus, message: str = "") -> SyncJob:
        """Mark the job finished now with ``status`` and an optional message (max 250 chars kept)."""
        finished_at = self._clock.now()
        return self._modify(
            mapping,
            job_id,
            lambda job: replace(job, status=status, finished_at=finished_at, message=message[:250]),
        )

    def get(self, mapping: str, job_id: str) -> SyncJob | None:
        """One job, or ``None``."""
        with table_errors(f"reading job {job_id}"):
            try:
                return _job(self._table.get_entity(encode_key(mapping), job_id))
            except ResourceNotFoundError:
                return None

    def list_jobs(self, mapping: str | None = None, *, limit: int = 100) -> list[SyncJob]:
        """Newest jobs first (per mapping by key order; across mappings sorted here)."""
        with table_errors("listing jobs"):
            if mapping is not None:
                pages = self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": encode_key(mapping)}, results_per_page=limit
                )
                jobs = []
                for entity in pages:
                    jobs.append(_job(entity))
                    if len(jobs) >= limit:
                        break
                return jobs
            everything = [_job(e) for e in self._table.list_entities(results_per_page=1000)]
        everything.sort(key=lambda j: j.job_id)
        return everything[:limit]

    def _modify(self, mapping: str, job_id: str, change: Callable[[SyncJob], SyncJob]) -> SyncJob:
        for _ in range(_MAX_RACE_RETRIES):
            current = self.get(mapping, job_id)
            if current is None:
                raise PermanentError(f"sync job {job_id} of {mapping} does not exist", code="JobNotFound")
            updated = change(current)
            try:
                with table_errors(f"updating job {job_id}"):
                    result = self._table.update_entity(
                        _entity(updated),
                        mode=UpdateMode.REPLACE,
                        etag=current.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except RetriableError as error:
                if isinstance(error.__cause__, ResourceModifiedError):
                    continue  # another worker updated the job between our read and write
                raise
            return replace(updated, etag=result["etag"])
        raise RetriableError(f"sync job {job_id} stayed contended; try again", code="ConcurrencyConflict")
