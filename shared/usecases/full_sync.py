"""Full synchronization with review (behaviour reference §3), run in the background.

Starting a run stores a review line per mapping with its recommendation and queues an
"advance" message. Advancing claims every line whose dependencies are satisfied (a conditional
write, so two workers never start the same line) and queues one message per claimed line. A
line's worker couples by match where the recommendation says so, then runs both passes with
"create uncoupled" and "force" on, records its jobs, and queues another "advance". A line works
in steps of at most FULL_SYNC_STEP_SECONDS: a pass still reading then stores where its source goes
on and queues the line's next step (docs/full-sync.md). The run ends when no line can make
progress. Progress is readable at any time.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.config import FullSyncSettings
from shared.domain.full_sync import (
    FullSyncRun,
    LineStatus,
    Recommendation,
    ReviewLine,
    RunStatus,
    SideCounts,
    review_lines,
    run_finished,
    startable,
)
from shared.domain.leases import FULL_SYNC_HOLDER_PREFIX
from shared.domain.mapping import TableMapping
from shared.domain.record_sync import SyncOptions
from shared.domain.state import JobType, SyncDirection
from shared.domain.watermarks import ReadWindow
from shared.errors import PermanentError, RetriableError, SyncError
from shared.ports import (
    BusinessCentralPort,
    Clock,
    CouplingStore,
    DataversePort,
    FullSyncStore,
    LeaseStore,
    MessageQueue,
    SyncJobStore,
)
from shared.resources import QUEUE_FULL_SYNC
from shared.usecases._jobs import finish_job, start_job
from shared.usecases._lease import hold_mapping
from shared.usecases.match_coupling import couple_by_match
from shared.usecases.sync_engine import SyncEngine
from shared.usecases.synchronize import due_again, passes_of

__all__ = ["advance_full_sync", "parse_full_sync_message", "run_full_sync_line", "start_full_sync"]

_STALE_RUN = timedelta(days=1)  # a run older than this no longer blocks a new one (as the built-in)
_CLOCK_SKEW = timedelta(seconds=5)  # between our clock and BC's lastModifiedDateTime
_LEASE_WAIT = timedelta(seconds=60)  # for a scheduled or pushed sync of the same mapping to finish


def _side_counts(
    mapping: TableMapping, bc: BusinessCentralPort, dataverse: DataversePort, engine: SyncEngine
) -> SideCounts:
    bc_count = bc.count_records(mapping.bc_entity_set, filter=mapping.bc_filter)
    dataverse_count = engine.count_dataverse(mapping)
    only_base = False
    if mapping.name == "CURRENCY" and dataverse_count == 1:
        rows = [r for page in dataverse.list_rows(mapping.dataverse_entity_set, select=["exchangerate"]) for r in page]
        only_base = len(rows) == 1 and float(rows[0].get("exchangerate") or 0) == 1.0
    return SideCounts(bc_count, dataverse_count, dataverse_only_base_currency=only_base)


def start_full_sync(
    mappings: Sequence[TableMapping],
    *,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    engine: SyncEngine,
    runs: FullSyncStore,
    queue: MessageQueue,
    clock: Clock,
) -> FullSyncRun:
    """Review every mapping and start a run in the background.

    Raises:
        PermanentError: ``FullSyncRunning`` when a run started less than a day ago is not finished.
    """
    now = clock.now()
    busy = [r for r in runs.running_runs() if now - r.started_at < _STALE_RUN]
    if busy:
        raise PermanentError(
            f"A full synchronization is already running (run {busy[0].run_id}); wait for it to finish.",
            code="FullSyncRunning",
        )
    eligible = [m for m in mappings if passes_of(m)]
    lines = review_lines(eligible, {m.name: _side_counts(m, bc, dataverse, engine) for m in eligible})
    run = FullSyncRun(uuid.uuid4().hex, RunStatus.RUNNING, now)
    runs.create_run(run, lines)
    queue.send(QUEUE_FULL_SYNC, {"type": "advance", "runId": run.run_id}, message_id=f"{run.run_id}-start")
    return run


def _load(runs: FullSyncStore, run_id: str) -> tuple[FullSyncRun, list[ReviewLine]]:
    found = runs.get_run(run_id)
    if found is None:
        raise PermanentError(f"There is no full synchronization run {run_id}.", code="NotFound")
    return found


def advance_full_sync(run_id: str, *, runs: FullSyncStore, queue: MessageQueue, clock: Clock) -> list[str]:
    """Start every line whose dependencies are satisfied; finish the run when nothing can move.

    Returns the mappings this call started. Safe to run twice at once: a line is claimed by a
    conditional write, and only the claimer queues it.
    """
    run, lines = _load(runs, run_id)
    if run.status is RunStatus.FINISHED:
        return []
    started = []
    for name in startable(lines):
        order = next(i for i, line in enumerate(lines) if line.mapping == name)
        claimed = runs.update_line(run_id, replace(lines[order], status=LineStatus.IN_PROCESS), order=order)
        if claimed is not None:
            queue.send(
                QUEUE_FULL_SYNC, {"type": "line", "runId": run_id, "mapping": name}, message_id=f"{run_id}-{name}"
            )
            started.append(name)
    _, lines = _load(runs, run_id)
    if run_finished(lines):
        runs.finish_run(run_id, clock.now())
    return started


def run_full_sync_line(
    run_id: str,
    mapping: TableMapping,
    *,
    step: int = 0,
    engine: SyncEngine,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    runs: FullSyncStore,
    queue: MessageQueue,
    leases: LeaseStore,
    clock: Clock,
    settings: FullSyncSettings | None = None,
) -> ReviewLine | None:
    """Run one step of a claimed line: couple by match if recommended, then create-and-couple and
    force both passes, for up to ``settings.step_seconds``; a step that runs out of time stores
    where it stopped and queues the next step.

    The step holds its mapping's lease throughout, so no other writer creates records of it
    meanwhile. A message for a line that is no longer in process, or for a step already done
    (a redelivery), does nothing.

    Raises:
        MappingBusy: another writer kept the mapping's lease for a whole minute (redelivered later).
    """
    if _current_line(runs, run_id, mapping.name, step) is None:
        return None
    holder = f"{FULL_SYNC_HOLDER_PREFIX}{run_id}"
    with hold_mapping(mapping.name, holder, leases=leases, clock=clock, wait=_LEASE_WAIT):
        # Read again under the lease: another delivery of this step may have just finished it.
        current = _current_line(runs, run_id, mapping.name, step)
        if current is None:
            return None
        order, line = current
        return _run_line(
            run_id,
            mapping,
            line,
            order,
            engine=engine,
            bc=bc,
            dataverse=dataverse,
            couplings=couplings,
            jobs=jobs,
            runs=runs,
            queue=queue,
            clock=clock,
            settings=settings or FullSyncSettings(),
        )


def _current_line(runs: FullSyncStore, run_id: str, mapping: str, step: int) -> tuple[int, ReviewLine] | None:
    """The line (with its position) when it is in process at ``step``; else ``None``."""
    _, lines = _load(runs, run_id)
    found = next(((i, ln) for i, ln in enumerate(lines) if ln.mapping == mapping), None)
    if found is None or found[1].status is not LineStatus.IN_PROCESS or found[1].step != step:
        return None
    return found


_FOLLOW_UP = "followUp"  # the phase that sends BC's one-way values of records created in BC


@dataclass(frozen=True)
class _LineStep:
    """The line a step works on, and where its outcome goes."""

    run_id: str
    mapping: TableMapping
    line: ReviewLine
    order: int
    jobs: SyncJobStore
    runs: FullSyncStore
    queue: MessageQueue


def _run_line(
    run_id: str,
    mapping: TableMapping,
    line: ReviewLine,
    order: int,
    *,
    engine: SyncEngine,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    runs: FullSyncStore,
    queue: MessageQueue,
    clock: Clock,
    settings: FullSyncSettings,
) -> ReviewLine | None:
    stop_after = time.monotonic() + settings.step_seconds
    step = _LineStep(run_id, mapping, line, order, jobs, runs, queue)
    updates: dict[str, Any] = {}
    paused: tuple[str, str] | None = None  # (phase, where its source goes on) when out of time
    try:
        if line.phase is None:
            updates.update(
                _couple_by_match_first(
                    mapping,
                    line,
                    engine=engine,
                    bc=bc,
                    dataverse=dataverse,
                    couplings=couplings,
                    jobs=jobs,
                    clock=clock,
                )
            )
            updates["passes_started_at"] = clock.now()
        passes_started = updates.get("passes_started_at") or line.passes_started_at or clock.now()
        phases = [d.value for d in passes_of(mapping)] + [_FOLLOW_UP]
        first = phases.index(line.phase) if line.phase in phases else 0
        # As in every Sales pass (and the built-in's full sync, which runs the normal two passes):
        # rows the connector itself wrote last hold what the BC pass has just brought in line, so
        # they are not read back; rows someone else changed or created still are.
        own_user = dataverse.application_user_id() if SyncDirection.FROM_DATAVERSE in passes_of(mapping) else None
        for phase in phases[first:]:
            resuming = phase == line.phase
            if phase == _FOLLOW_UP:
                _follow_up(step, updates, engine=engine, clock=clock, passes_started=passes_started)
                continue
            direction = SyncDirection(phase)
            key = "to_dataverse_job_id" if direction is SyncDirection.TO_DATAVERSE else "from_dataverse_job_id"
            job_id = getattr(line, key) if resuming else None
            if job_id is None:
                job_id = start_job(mapping.name, direction, jobs=jobs, clock=clock).job_id
                if direction is SyncDirection.FROM_DATAVERSE:
                    # Rows the BC pass overwrote while they had changed in Sales too: the connector
                    # wrote them last, so the pass below leaves them out; they are read by id here.
                    recheck = due_again(mapping, direction, couplings=couplings)
                    if recheck:
                        engine.sync_ids(mapping, direction, recheck, job_id=job_id, options=SyncOptions(force=True))
            updates[key] = job_id
            result = engine.run_pass(
                mapping,
                direction,
                job_id=job_id,
                options=SyncOptions(force=True, create_uncoupled=True),
                window=None,
                exclude_modified_by=own_user if direction is SyncDirection.FROM_DATAVERSE else None,
                resume_from=line.resume_link if resuming else None,
                stop_after=stop_after,
                page_size=settings.page_size,
            )
            if result.next_link is not None:
                paused = (phase, result.next_link)
                break
            finish_job(mapping.name, job_id, jobs=jobs)
    except SyncError as error:
        return _finish_line(step, updates, error=error.message)
    if paused is not None:
        return _continue_later(step, updates, phase=paused[0], resume_link=paused[1])
    return _finish_line(step, updates, error=None)


def _couple_by_match_first(
    mapping: TableMapping,
    line: ReviewLine,
    *,
    engine: SyncEngine,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    clock: Clock,
) -> dict[str, Any]:
    """Couple what exists on both sides before anything is created, whatever the recommendation,
    so a full sync never duplicates a record it could have matched; returns the line's changes."""
    if line.recommendation is Recommendation.NO_RECORDS_FOUND or not mapping.match_fields():
        return {}
    coupling_job = start_job(
        mapping.name, SyncDirection.TO_DATAVERSE, jobs=jobs, clock=clock, job_type=JobType.COUPLING
    )
    # An empty Sales table (one $count) matches nothing: no query per 20 BC records.
    if engine.count_dataverse(mapping) > 0:
        couple_by_match(
            mapping,
            bc=bc,
            dataverse=dataverse,
            couplings=couplings,
            engine=engine,
            jobs=jobs,
            job_id=coupling_job.job_id,
            create_new_if_no_match=False,  # the passes create what stays uncoupled
            sync_after=False,  # and bring every coupled pair in line
            report_unmatched=False,
        )
    finish_job(mapping.name, coupling_job.job_id, jobs=jobs)
    return {"coupling_job_id": coupling_job.job_id}


def _follow_up(
    step: _LineStep, updates: dict[str, Any], *, engine: SyncEngine, clock: Clock, passes_started: datetime
) -> None:
    """Records just created in BC from Sales carry BC's own values in the fields that flow only to
    Sales (prices, costs, credit limits); send them now, so the run converges and a second full
    sync finds nothing to do."""
    mapping, jobs = step.mapping, step.jobs
    from_job = updates.get("from_dataverse_job_id") or step.line.from_dataverse_job_id
    to_job = updates.get("to_dataverse_job_id") or step.line.to_dataverse_job_id
    done = jobs.get(mapping.name, from_job) if from_job else None
    if not to_job or done is None or not done.counters.inserted:
        return
    engine.run_pass(
        mapping,
        SyncDirection.TO_DATAVERSE,
        job_id=to_job,
        options=SyncOptions(force=True),
        window=ReadWindow(since=passes_started - _CLOCK_SKEW, until=clock.now()),
    )
    finish_job(mapping.name, to_job, jobs=jobs)


def _continue_later(step: _LineStep, updates: dict[str, Any], *, phase: str, resume_link: str) -> ReviewLine:
    """Store where the pass stopped and queue the line's next step (idempotent by step)."""
    following = step.line.step + 1
    saved = step.runs.update_line(
        step.run_id,
        replace(step.line, phase=phase, resume_link=resume_link, step=following, **updates),
        order=step.order,
    )
    if saved is None:
        # Someone else changed the line (not another step: this one holds the lease); redelivered.
        raise RetriableError(f"the review line of {step.mapping.name} changed while it ran", code="ConcurrencyConflict")
    step.queue.send(
        QUEUE_FULL_SYNC,
        {"type": "line", "runId": step.run_id, "mapping": step.mapping.name, "step": following},
        message_id=f"{step.run_id}-{step.mapping.name}-step-{following}",
    )
    return saved


def _finish_line(step: _LineStep, updates: dict[str, Any], *, error: str | None) -> ReviewLine | None:
    """Close the line from its jobs' outcome and let the run start what depended on it."""
    run_id, mapping, line, jobs = step.run_id, step.mapping, step.line, step.jobs
    failed = 1 if error else 0
    messages = [error] if error else []
    for key in ("coupling_job_id", "to_dataverse_job_id", "from_dataverse_job_id"):
        job_id = updates.get(key) or getattr(line, key)
        job = jobs.get(mapping.name, job_id) if job_id else None
        if job is None or job.job_type is not JobType.SYNCHRONIZATION:
            continue
        failed += job.counters.failed
        if job.message:
            messages.append(f"{job.direction.value}: {job.message}")
    status = LineStatus.ERROR if failed else LineStatus.FINISHED
    finished = replace(line, status=status, message="; ".join(messages), resume_link=None, **updates)
    stored = step.runs.update_line(run_id, finished, order=step.order)
    step.queue.send(
        QUEUE_FULL_SYNC,
        {"type": "advance", "runId": run_id},
        message_id=f"{run_id}-after-{mapping.name}-{status.value}",
    )
    return stored


def parse_full_sync_message(body: bytes) -> tuple[str, str, str | None, int]:
    """``(type, runId, mapping, step)`` of a full-sync queue message (step 0 when absent).

    Raises:
        PermanentError: ``MalformedMessage``.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PermanentError("malformed full-sync message: not JSON", code="MalformedMessage") from None
    if not isinstance(document, dict) or document.get("type") not in {"advance", "line"}:
        raise PermanentError("malformed full-sync message: type must be advance or line", code="MalformedMessage")
    run_id, mapping = document.get("runId"), document.get("mapping")
    if not isinstance(run_id, str) or not run_id:
        raise PermanentError("malformed full-sync message: runId is missing", code="MalformedMessage")
    if document["type"] == "line" and (not isinstance(mapping, str) or not mapping):
        raise PermanentError("malformed full-sync message: mapping is missing", code="MalformedMessage")
    step = document.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise PermanentError("malformed full-sync message: step must be a whole number", code="MalformedMessage")
    return document["type"], run_id, mapping if isinstance(mapping, str) else None, step
