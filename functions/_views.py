"""JSON shapes of the domain objects the HTTP routes return (camelCase, like both APIs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shared.domain.state import Coupling, SyncErrorRecord, SyncJob


def coupling_view(coupling: Coupling) -> dict[str, Any]:
    """A coupling as an administrator reads it."""
    return {
        "mapping": coupling.mapping,
        "bcId": coupling.bc_id,
        "dataverseId": coupling.dataverse_id,
        "bcModifiedAt": coupling.bc_modified_at,
        "dataverseModifiedAt": coupling.dataverse_modified_at,
        "lastSyncedAt": coupling.last_synced_at,
        "lastResultToBc": coupling.last_result_to_bc,
        "lastResultToDataverse": coupling.last_result_to_dataverse,
        "lastJobId": coupling.last_job_id,
        "lastError": coupling.last_error,
        "skipped": coupling.skipped,
        "recheckInSales": coupling.recheck_in_sales,
    }


def job_view(job: SyncJob) -> dict[str, Any]:
    """A sync job with its counters (built-in table 5338's fields)."""
    return {
        "id": job.job_id,
        "mapping": job.mapping,
        "type": job.job_type.value,
        "direction": job.direction.value,
        "status": job.status.value,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "message": job.message,
        **asdict(job.counters),
    }


def error_view(error: SyncErrorRecord) -> dict[str, Any]:
    """A sync error row (built-in table 5339's fields)."""
    return {
        "id": error.error_id,
        "mapping": error.mapping,
        "jobId": error.job_id,
        "source": error.source,
        "destination": error.destination,
        "message": error.message,
        "detail": error.detail,
        "createdAt": error.created_at,
    }
