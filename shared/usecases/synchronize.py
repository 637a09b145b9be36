"""Scheduled and on-demand synchronization of a mapping's modified records (both passes).

BC → Sales runs first, then Sales → BC, as the built-in does. Each pass: retry the couplings
whose last sync toward that side failed (and are not skipped), then read what changed since the
pass's watermark, sync it, and move the watermark on once everything read is committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.tables.sync_jobs import new_job_id
from shared.domain.full_sync import dependency_order
from shared.domain.mapping import TableMapping
from shared.domain.messages import SyncMappingRequest
from shared.domain.record_sync import SyncOptions
from shared.domain.state import JobStatus, JobType, SyncDirection, SyncJob, Watermark
from shared.domain.watermarks import ReadWindow, next_watermark, plan_window
from shared.errors import PermanentError, RetriableError, SyncError
from shared.ports import (
    Clock,
    CouplingStore,
    FullSyncStore,
    LeaseStore,
    MessageQueue,
    SyncJobStore,
    WatermarkStore,
)
from shared.resources import QUEUE_RECORD_SYNC
from shared.usecases._jobs import finish_job, start_job
from shared.usecases._lease import MappingBusy, hold_mapping
from shared.usecases.sync_engine import SyncEngine, WindowRead

__all__ = [
    "PASS_NAMES",
    "SyncRun",
    "passes_of",
    "request_mapping_sync",
    "synchronize_all",
    "synchronize_modified",
    "synchronize_records",
]

_log = logging.getLogger(__name__)

# How long a requested or pushed sync waits for another writer of the same mapping (a scheduled
# run waits not at all: the next run comes soon enough). Longer waits come from redelivery.
REQUEST_WAIT = timedelta(seconds=30)
PUSH_WAIT = timedelta(seconds=20)

PASS_NAMES = {SyncDirection.TO_DATAVERSE: "bc", SyncDirection.FROM_DATAVERSE: "dataverse"}


@dataclass(frozen=True)
class SyncRun:
    """The job rows one synchronization of one mapping produced (one per pass)."""

    mapping: str
    jobs: tuple[SyncJob, ...]


def request_mapping_sync(
    mapping: TableMapping, *, jobs: SyncJobStore, queue: MessageQueue, clock: Clock
) -> dict[SyncDirection, str]:
    """Queue a synchronization of ``mapping``'s modified records; returns its job ids by pass.

    The job rows exist (Running) before the message is sent, so the caller can watch them at
    once; the queue message is idempotent by the first job id.
    """
    started = clock.now()
    job_ids = {}
    for direction in passes_of(mapping):
        job = jobs.start(SyncJob(new_job_id(started), mapping.name, JobType.SYNCHRONIZATION, direction, started))
        job_ids[direction] = job.job_id
    if not job_ids:
        raise PermanentError(f"The mapping {mapping.name} has no enabled field mappings.", code="NothingToSync")
    request = SyncMappingRequest(mapping.name, job_ids)
    queue.send(QUEUE_RECORD_SYNC, request.to_json(), message_id=next(iter(job_ids.values())))
    return job_ids


def passes_of(mapping: TableMapping) -> list[SyncDirection]:
    """The passes a mapping runs, BC → Sales first."""
    return [
        d
        for d in (SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE)
        if mapping.allows(d) and mapping.fields_for(d)
    ]


def due_again(mapping: TableMapping, direction: SyncDirection, *, couplings: CouplingStore) -> list[str]:
    """Source ids a pass reads by id before its window: records that failed toward its
    destination (not skipped) and, for a Sales pass, rows to read back after a merge."""
    return [
        c.bc_id if direction is SyncDirection.TO_DATAVERSE else c.dataverse_id
        for c in couplings.list_couplings(mapping.name, failed_toward=direction)
    ]


def synchronize_modified(
    mapping: TableMapping,
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    watermarks: WatermarkStore,
    leases: LeaseStore,
    clock: Clock,
    application_user_id: str | None,
    job_ids: Mapping[SyncDirection, str] | None = None,
    wait: timedelta = REQUEST_WAIT,
    read_ahead: Mapping[SyncDirection, _ReadAhead] | None = None,
) -> SyncRun:
    """Run both passes of ``mapping`` over what changed since its watermarks, holding its lease.

    A pass that cannot read its source is recorded as a failed job (its watermark stays), and
    the other pass still runs. Raises nothing for record-level failures: they are in the job.

    Raises:
        MappingBusy: another writer held the mapping's lease for the whole of ``wait``.
    """
    holder = f"sync:{next(iter(job_ids.values()))}" if job_ids else "schedule"
    with hold_mapping(mapping.name, holder, leases=leases, clock=clock, wait=wait):
        return _synchronize_modified(
            mapping,
            engine=engine,
            couplings=couplings,
            jobs=jobs,
            watermarks=watermarks,
            clock=clock,
            application_user_id=application_user_id,
            job_ids=job_ids,
            read_ahead=read_ahead or {},
        )


def _synchronize_modified(
    mapping: TableMapping,
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    watermarks: WatermarkStore,
    clock: Clock,
    application_user_id: str | None,
    job_ids: Mapping[SyncDirection, str] | None,
    read_ahead: Mapping[SyncDirection, _ReadAhead],
) -> SyncRun:
    run_started = clock.now()
    finished: list[SyncJob] = []
    for direction in passes_of(mapping):
        existing = jobs.get(mapping.name, job_ids[direction]) if job_ids and direction in job_ids else None
        if existing is not None and existing.status is not JobStatus.RUNNING:
            continue  # a redelivered request whose pass already finished
        job = existing or start_job(mapping.name, direction, jobs=jobs, clock=clock)
        pass_name = PASS_NAMES[direction]
        stored = watermarks.get(mapping.name, pass_name)
        ahead = read_ahead.get(direction)
        window = ahead.window if ahead else plan_window(stored.value if stored else None, run_started)
        # The echo rule: the Sales pass leaves out rows the connector itself wrote last.
        exclude = application_user_id if direction is SyncDirection.FROM_DATAVERSE else None
        try:
            retry_ids = due_again(mapping, direction, couplings=couplings)
            if retry_ids:
                engine.sync_ids(mapping, direction, retry_ids, job_id=job.job_id, options=SyncOptions())
            result = engine.run_pass(
                mapping,
                direction,
                job_id=job.job_id,
                options=SyncOptions(),
                window=window,
                exclude_modified_by=exclude,
                pages=ahead.pages if ahead else None,
            )
        except SyncError as error:
            finished.append(jobs.finish(mapping.name, job.job_id, JobStatus.FAILED, error.message))
            continue
        moved = next_watermark(stored.value if stored else None, result.newest_seen, window)
        if moved is not None and (stored is None or moved != stored.value):
            # A concurrent run that moved it first wins; both read the same records.
            with contextlib.suppress(RetriableError):
                watermarks.advance(Watermark(mapping.name, pass_name, moved, etag=stored.etag if stored else None))
        finished.append(finish_job(mapping.name, job.job_id, jobs=jobs))
    return SyncRun(mapping.name, tuple(finished))


@dataclass(frozen=True)
class _ReadAhead:
    """A pass's window and its pages, read before the run's first mapping is synchronized."""

    window: ReadWindow
    pages: Iterable[Sequence[dict[str, Any]]]


def _read_windows_ahead(
    mappings: Sequence[TableMapping],
    *,
    engine: SyncEngine,
    watermarks: WatermarkStore,
    now: datetime,
    application_user_id: str | None,
) -> dict[str, dict[SyncDirection, _ReadAhead]]:
    """Every pass's window, and its changed records read together: one request per side, not
    one per mapping and pass. A read that fails leaves each pass to read (and report) its own."""
    reads = []
    for mapping in mappings:
        for direction in passes_of(mapping):
            stored = watermarks.get(mapping.name, PASS_NAMES[direction])
            exclude = application_user_id if direction is SyncDirection.FROM_DATAVERSE else None
            reads.append(WindowRead(mapping, direction, plan_window(stored.value if stored else None, now), exclude))
    try:
        pages = engine.read_windows(reads)
    except SyncError as error:
        _log.warning("reading the windows together failed (%s); each pass reads its own", error.message)
        return {}
    ahead: dict[str, dict[SyncDirection, _ReadAhead]] = {}
    for read in reads:
        found = pages.get((read.mapping.name, read.direction))
        if found is not None:
            ahead.setdefault(read.mapping.name, {})[read.direction] = _ReadAhead(read.window, found)
    return ahead


def synchronize_all(
    mappings: Sequence[TableMapping],
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    watermarks: WatermarkStore,
    leases: LeaseStore,
    clock: Clock,
    application_user_id: str | None,
    full_syncs: FullSyncStore | None = None,
) -> list[SyncRun]:
    """The scheduled run: every mapping, dependencies first, both passes each.

    Nothing runs while a full synchronization is in progress (the built-in puts its recurring
    jobs on hold meanwhile). A mapping whose lease another writer holds is left to the next run:
    its watermarks stay where they are, so nothing it would have read is lost.
    """
    now = clock.now()
    if full_syncs is not None and any(now - r.started_at < timedelta(days=1) for r in full_syncs.running_runs()):
        _log.info("scheduled sync skipped: a full synchronization is running")
        return []
    ordered = dependency_order(mappings)
    read_ahead = _read_windows_ahead(
        ordered, engine=engine, watermarks=watermarks, now=now, application_user_id=application_user_id
    )
    runs = []
    for m in ordered:
        try:
            runs.append(
                synchronize_modified(
                    m,
                    engine=engine,
                    couplings=couplings,
                    jobs=jobs,
                    watermarks=watermarks,
                    leases=leases,
                    clock=clock,
                    application_user_id=application_user_id,
                    wait=timedelta(0),
                    read_ahead=read_ahead.get(m.name),
                )
            )
        except MappingBusy as busy:
            _log.info("scheduled sync of %s left to the next run: %s", m.name, busy.message)
    return runs


def synchronize_records(
    mapping: TableMapping,
    direction: SyncDirection,
    ids: Sequence[str],
    *,
    engine: SyncEngine,
    jobs: SyncJobStore,
    leases: LeaseStore,
    clock: Clock,
    wait: timedelta = PUSH_WAIT,
) -> SyncJob | None:
    """Sync the given source records now (pushed by a BC webhook or by Dataverse), in one job.

    Returns ``None`` without syncing when a full synchronization holds the mapping: it reads every
    record anyway, and the scheduled run after it picks up what changed meanwhile (its watermarks
    did not move), so waiting for it would only hold a worker.

    Raises:
        MappingBusy: another writer held the mapping's lease for the whole of ``wait``
            (the message is redelivered).
    """
    try:
        with hold_mapping(mapping.name, "push", leases=leases, clock=clock, wait=wait, yield_to_full_sync=True):
            job = start_job(mapping.name, direction, jobs=jobs, clock=clock)
            try:
                engine.sync_ids(mapping, direction, ids, job_id=job.job_id, options=SyncOptions())
            except SyncError as error:
                jobs.finish(mapping.name, job.job_id, JobStatus.FAILED, error.message)
                raise
            return finish_job(mapping.name, job.job_id, jobs=jobs)
    except MappingBusy as busy:
        if busy.holder is not None and busy.holder.held_by_full_sync:
            _log.info("%d pushed %s record(s) left to the full synchronization running", len(ids), mapping.name)
            return None
        raise
