"""What an administrator does to single records by hand: couple, uncouple, Synchronize Now,
create on the other side, restore skipped records (behaviour reference §2.1, §2.6, §2.7)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import timedelta

from shared.domain.mapping import TableMapping
from shared.domain.record_sync import SyncOptions
from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncJob
from shared.domain.watermarks import parse_instant
from shared.errors import PermanentError
from shared.odata import guid_literal
from shared.ports import (
    BusinessCentralPort,
    Clock,
    CouplingStore,
    DataversePort,
    LeaseStore,
    SyncErrorStore,
    SyncJobStore,
)
from shared.usecases._jobs import finish_job, start_job
from shared.usecases._lease import hold_mapping
from shared.usecases.sync_engine import SyncEngine

__all__ = [
    "SyncNowChoice",
    "couple_records",
    "create_in_business_central",
    "create_in_dataverse",
    "restore_skipped",
    "synchronize_record",
    "uncouple_record",
]


class SyncNowChoice(enum.StrEnum):
    """The Synchronize Now menu of a coupled record."""

    TO_DATAVERSE = "toDataverse"  # "Send data update to Dataverse"
    FROM_DATAVERSE = "fromDataverse"  # "Get data update from Dataverse"
    MERGE = "merge"  # "Merge data"


_CREATE_WAIT = timedelta(seconds=15)  # for another writer of the mapping, before answering 409


def _not_found(what: str) -> PermanentError:
    return PermanentError(what, code="NotFound")


def couple_records(
    mapping: TableMapping,
    bc_id: str,
    dataverse_id: str,
    *,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
) -> Coupling:
    """Couple a BC record and a Dataverse row that both exist.

    A coupling whose BC record no longer exists does not block the Dataverse row: it is removed
    first, as the built-in does with stale couplings.

    Raises:
        PermanentError: ``InvalidGuid``, ``NotFound`` (naming the missing record) or
            ``CouplingConflict`` (naming the record it is already coupled to).
    """
    bc_id, dataverse_id = guid_literal(bc_id), guid_literal(dataverse_id)
    if bc_id not in bc.get_records(mapping.bc_entity_set, [bc_id]):
        raise _not_found(f"Business Central {mapping.bc_entity_set} record {bc_id} does not exist.")
    if dataverse_id not in {k.lower() for k in dataverse.get_rows(mapping.dataverse_entity_set, [dataverse_id])}:
        raise _not_found(f"Dataverse {mapping.dataverse_entity_set} row {dataverse_id} does not exist.")
    existing = couplings.get_by_dataverse_id(mapping.name, dataverse_id)
    if existing is not None and existing.bc_id != bc_id and not bc.get_records(mapping.bc_entity_set, [existing.bc_id]):
        couplings.uncouple(mapping.name, existing.bc_id)
    return couplings.couple(Coupling(mapping.name, bc_id, dataverse_id))


def uncouple_record(mapping: TableMapping, bc_id: str, *, couplings: CouplingStore) -> Coupling:
    """Remove a coupling. Raises PermanentError ``NotFound`` when the record is not coupled."""
    removed = couplings.uncouple(mapping.name, guid_literal(bc_id))
    if removed is None:
        raise _not_found(f"{mapping.name}: Business Central record {bc_id} is not coupled.")
    return removed


def synchronize_record(
    mapping: TableMapping,
    bc_id: str,
    choice: SyncNowChoice | None,
    *,
    engine: SyncEngine,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    clock: Clock,
) -> list[SyncJob]:
    """Synchronize Now for one coupled record (§2.7).

    Without a choice, the default follows which side changed since the last sync: only BC →
    send, only Dataverse → get, both or neither → merge. A merge is refused when both sides
    changed a bidirectional field (the caller must pick a direction). The record is written even
    when nothing changed, and a skipped coupling is restored by asking.

    Raises:
        PermanentError: ``NotCoupled``, ``NotFound``, ``DirectionNotAllowed`` or ``MergeConflict``.
    """
    bc_id = guid_literal(bc_id)
    coupling = couplings.get_by_bc_id(mapping.name, bc_id)
    if coupling is None:
        raise PermanentError(
            f"The {mapping.name} record {bc_id} is not coupled to a Dataverse row; couple it first.", code="NotCoupled"
        )
    if coupling.skipped:
        coupling = couplings.update(coupling.with_changes(skipped=False))
    bc_record = bc.get_records(mapping.bc_entity_set, [bc_id]).get(bc_id)
    row = {k.lower(): v for k, v in dataverse.get_rows(mapping.dataverse_entity_set, [coupling.dataverse_id]).items()}
    dataverse_row = row.get(coupling.dataverse_id.lower())
    if bc_record is None or dataverse_row is None:
        side = "Business Central record" if bc_record is None else "Dataverse row"
        raise _not_found(f"The coupled {side} of {mapping.name} {bc_id} no longer exists.")

    if choice is None:
        bc_changed = _changed(bc_record.get(mapping.bc_modified_field), coupling.bc_modified_at)
        dataverse_changed = _changed(
            dataverse_row.get(mapping.dataverse_modified_field), coupling.dataverse_modified_at
        )
        if bc_changed and not dataverse_changed:
            choice = SyncNowChoice.TO_DATAVERSE
        elif dataverse_changed and not bc_changed:
            choice = SyncNowChoice.FROM_DATAVERSE
        else:
            choice = SyncNowChoice.MERGE
    directions = {
        SyncNowChoice.TO_DATAVERSE: [SyncDirection.TO_DATAVERSE],
        SyncNowChoice.FROM_DATAVERSE: [SyncDirection.FROM_DATAVERSE],
        SyncNowChoice.MERGE: [SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE],
    }[choice]
    directions = [d for d in directions if mapping.allows(d) and mapping.fields_for(d)]
    if not directions:
        raise PermanentError(
            f"The mapping {mapping.name} is not configured for {choice.value} synchronization.",
            code="DirectionNotAllowed",
        )
    # A one-way choice overwrites the other side; a merge only goes ahead without a conflict.
    options = SyncOptions(force=choice is not SyncNowChoice.MERGE)
    finished = []
    for direction in directions:
        job = start_job(mapping.name, direction, jobs=jobs, clock=clock)
        source_id = bc_id if direction is SyncDirection.TO_DATAVERSE else coupling.dataverse_id
        counters = engine.sync_ids(mapping, direction, [source_id], job_id=job.job_id, options=options)
        finished.append(finish_job(mapping.name, job.job_id, jobs=jobs))
        if choice is SyncNowChoice.MERGE and counters.failed:
            raise PermanentError(
                f"Both the Business Central record and the Dataverse row of {mapping.name} {bc_id} changed a "
                "bi-directional field since the last synchronization; choose toDataverse or fromDataverse.",
                code="MergeConflict",
            )
    return finished


def _changed(modified: object, synced: object) -> bool:
    if not isinstance(modified, str) or not modified:
        return True
    return synced is None or parse_instant(modified) > synced  # type: ignore[operator]


def create_in_dataverse(
    mapping: TableMapping,
    bc_id: str,
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    leases: LeaseStore,
    clock: Clock,
) -> tuple[SyncJob, Coupling]:
    """ "Create in Dataverse": create and couple the row for an uncoupled BC record.

    Raises:
        PermanentError: ``AlreadyCoupled``, ``DirectionNotAllowed``, or the record's own failure
            (e.g. a dependency that is not coupled, named in the message).
    """
    return _create(
        mapping,
        guid_literal(bc_id),
        SyncDirection.TO_DATAVERSE,
        engine=engine,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        leases=leases,
        clock=clock,
    )


def create_in_business_central(
    mapping: TableMapping,
    dataverse_id: str,
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    leases: LeaseStore,
    clock: Clock,
) -> tuple[SyncJob, Coupling]:
    """ "Create in Business Central": create and couple the record for an uncoupled Dataverse row."""
    return _create(
        mapping,
        guid_literal(dataverse_id),
        SyncDirection.FROM_DATAVERSE,
        engine=engine,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        leases=leases,
        clock=clock,
    )


def _create(
    mapping: TableMapping,
    source_id: str,
    direction: SyncDirection,
    *,
    engine: SyncEngine,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    leases: LeaseStore,
    clock: Clock,
) -> tuple[SyncJob, Coupling]:
    if not mapping.allows(direction) or not mapping.fields_for(direction):
        raise PermanentError(
            f"The mapping {mapping.name} is not configured for {direction.value} synchronization.",
            code="DirectionNotAllowed",
        )
    lookup = couplings.get_by_bc_id if direction is SyncDirection.TO_DATAVERSE else couplings.get_by_dataverse_id
    existing = lookup(mapping.name, source_id)
    if existing is not None:
        raise _already_coupled(mapping, source_id, existing)
    # Under the mapping's lease, and looked up again once held: a scheduled run or a webhook
    # may have created and coupled the same record meanwhile.
    with hold_mapping(mapping.name, f"create:{source_id}", leases=leases, clock=clock, wait=_CREATE_WAIT):
        if (coupled_meanwhile := lookup(mapping.name, source_id)) is not None:
            raise _already_coupled(mapping, source_id, coupled_meanwhile)
        job = start_job(mapping.name, direction, jobs=jobs, clock=clock)
        counters = engine.sync_ids(
            mapping, direction, [source_id], job_id=job.job_id, options=SyncOptions(create_uncoupled=True)
        )
        finished = finish_job(mapping.name, job.job_id, jobs=jobs)
    created = lookup(mapping.name, source_id)
    if created is None:
        if counters == JobCounters():
            raise _not_found(f"{mapping.name}: {direction.value} source record {source_id} does not exist.")
        # Say why in the answer itself: the job's own error row names the cause and the fix.
        reasons = [e.message for e in errors.list_errors(mapping.name, limit=50) if e.job_id == job.job_id]
        raise PermanentError(
            f"{mapping.name} {source_id} could not be created: {'; '.join(reasons) or finished.message}",
            code="CreateFailed",
        )
    return finished, created


def _already_coupled(mapping: TableMapping, source_id: str, existing: Coupling) -> PermanentError:
    return PermanentError(
        f"{mapping.name} {source_id} is already coupled (BC {existing.bc_id} ↔ Dataverse {existing.dataverse_id}).",
        code="AlreadyCoupled",
    )


def restore_skipped(mapping: TableMapping, bc_ids: Sequence[str] | None, *, couplings: CouplingStore) -> list[str]:
    """Restore skipped couplings (all of the mapping's when ``bc_ids`` is ``None``); returns restored ids.

    A restored record keeps its failure mark, so the next run retries it first (§2.6).
    """
    if bc_ids is None:
        candidates = list(couplings.list_couplings(mapping.name, skipped_only=True))
    else:
        found = couplings.get_many_by_bc_ids(mapping.name, [guid_literal(i) for i in bc_ids])
        candidates = [c for c in found.values() if c.skipped]
    restored = []
    for coupling in candidates:
        couplings.update(coupling.with_changes(skipped=False, consecutive_failures=0))
        restored.append(coupling.bc_id)
    return restored


def find_coupling(mapping: str, *, bc_id: str | None, dataverse_id: str | None, couplings: CouplingStore) -> Coupling:
    """The coupling of a BC record or a Dataverse row under ``mapping`` (a mapping's or a document flow's name).

    Raises:
        PermanentError: ``MissingField`` (neither id given), ``InvalidGuid``, or ``NotFound``.
    """
    if bc_id:
        found = couplings.get_by_bc_id(mapping, guid_literal(bc_id))
    elif dataverse_id:
        found = couplings.get_by_dataverse_id(mapping, guid_literal(dataverse_id))
    else:
        raise PermanentError("give bcId or dataverseId", code="MissingField")
    if found is None:
        raise _not_found(f"{mapping}: {bc_id or dataverse_id} is not coupled.")
    return found
