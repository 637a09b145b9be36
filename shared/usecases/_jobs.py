"""Starting and finishing job rows, the same way for every kind of run."""

from __future__ import annotations

from shared.adapters.tables.sync_jobs import new_job_id
from shared.domain.state import JobStatus, JobType, SyncDirection, SyncJob
from shared.ports import Clock, SyncJobStore


def start_job(
    mapping: str,
    direction: SyncDirection,
    *,
    jobs: SyncJobStore,
    clock: Clock,
    job_type: JobType = JobType.SYNCHRONIZATION,
) -> SyncJob:
    """A new running job row."""
    started = clock.now()
    return jobs.start(SyncJob(new_job_id(started), mapping, job_type, direction, started))


def finish_job(mapping: str, job_id: str, *, jobs: SyncJobStore) -> SyncJob:
    """Finish a job from its counters: Failed when any record failed (the built-in's "Error")."""
    current = jobs.get(mapping, job_id)
    failed = current.counters.failed if current else 0
    return jobs.finish(
        mapping,
        job_id,
        JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
        f"{failed} record(s) failed; see the errors." if failed else "",
    )
