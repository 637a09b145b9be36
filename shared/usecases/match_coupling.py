"""Match-based coupling (behaviour reference §2.10): couple uncoupled BC records to the one
uncoupled Dataverse row that matches them, group by group in priority order.

Queries are batched: one Dataverse query per priority group per chunk of BC records (an OR of
each record's criteria), and each record is judged against the returned rows locally, so the
cost grows with pages, not with records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.domain.mapping import FieldMapping, TableMapping, UpdateConflictResolution
from shared.domain.matching import MatchCriterion, MatchVerdict, classify_candidates, match_criteria, match_groups
from shared.domain.record_sync import SyncOptions
from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncJob
from shared.errors import PermanentError
from shared.odata import field_name, literal
from shared.ports import BusinessCentralPort, Clock, CouplingStore, DataversePort, LeaseStore, SyncJobStore
from shared.usecases._jobs import finish_job
from shared.usecases._lease import hold_mapping
from shared.usecases.sync_engine import SyncEngine

__all__ = ["MatchResult", "couple_by_match", "run_match_coupling_job", "unmatched_message"]

_CHUNK = 20  # records per OR-query: keeps URLs well under the API's limits


@dataclass(frozen=True)
class MatchResult:
    """Counters of the coupling job and the BC ids that found no unique match."""

    counters: JobCounters
    unmatched: tuple[str, ...]


def _clause(criteria: Sequence[MatchCriterion]) -> str:
    return "(" + " and ".join(f"{field_name(c.dataverse_field)} eq {literal(c.value)}" for c in criteria) + ")"


def couple_by_match(
    mapping: TableMapping,
    *,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    engine: SyncEngine,
    jobs: SyncJobStore,
    job_id: str,
    create_new_if_no_match: bool | None = None,
    sync_after: bool | None = None,
    report_unmatched: bool = True,
) -> MatchResult:
    """Couple every uncoupled BC record of ``mapping`` that has exactly one uncoupled match.

    Unmatched records are created in Dataverse when the mapping (or the caller) says "create
    new if no match", else counted as failed with the built-in's message. Newly coupled records
    are synchronized afterwards when "synch. after match-based coupling" is set.

    Raises:
        PermanentError: the mapping has no match fields (named).
    """
    groups = match_groups(mapping)
    create_new = mapping.create_new_if_no_match if create_new_if_no_match is None else create_new_if_no_match
    sync_after = mapping.sync_after_match_coupling if sync_after is None else sync_after
    key = "value" if engine.is_option_mapping(mapping) else dataverse.primary_key(mapping.dataverse_entity_set)
    coupled_ids: list[str] = []
    unmatched: list[str] = []
    failed = 0
    for page in bc.list_records(mapping.bc_entity_set, filter=mapping.bc_filter):
        ids = [str(r["id"]).lower() for r in page]
        already = couplings.get_many_by_bc_ids(mapping.name, ids)
        pending = [r for r in page if str(r["id"]).lower() not in already]
        for start in range(0, len(pending), _CHUNK):
            chunk = pending[start : start + _CHUNK]
            coupled, left = _match_chunk(mapping, chunk, groups, key=key, engine=engine, couplings=couplings)
            coupled_ids.extend(coupled)
            unmatched.extend(left)
    if unmatched and create_new:
        engine.sync_ids(
            mapping, SyncDirection.TO_DATAVERSE, unmatched, job_id=job_id, options=SyncOptions(create_uncoupled=True)
        )
    elif unmatched and report_unmatched:
        failed = len(unmatched)
    if coupled_ids and sync_after:
        for direction in _directions_after_coupling(mapping):
            source_ids = coupled_ids
            if direction is SyncDirection.FROM_DATAVERSE:
                found = couplings.get_many_by_bc_ids(mapping.name, coupled_ids)
                source_ids = [c.dataverse_id for c in found.values()]
            engine.sync_ids(mapping, direction, source_ids, job_id=job_id, options=SyncOptions(force=True))
    counters = JobCounters(coupled=len(coupled_ids), failed=failed)
    jobs.add_counts(mapping.name, job_id, counters)
    return MatchResult(counters, tuple(unmatched) if not create_new else ())


def unmatched_message(mapping: TableMapping, count: int) -> str:
    """The built-in's message for records without a unique uncoupled match."""
    return (
        f"Failed to couple {count} record(s), because no unique uncoupled matching entity was found in "
        f"{mapping.dataverse_entity_set} with the specified matching criteria."
    )


def _directions_after_coupling(mapping: TableMapping) -> list[SyncDirection]:
    if mapping.direction is not SyncDirection.BIDIRECTIONAL:
        return [mapping.direction]
    return {
        UpdateConflictResolution.GET_UPDATE_FROM_DATAVERSE: [SyncDirection.FROM_DATAVERSE],
        UpdateConflictResolution.SEND_UPDATE_TO_DATAVERSE: [SyncDirection.TO_DATAVERSE],
    }.get(mapping.update_conflict, [SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE])


def _match_chunk(
    mapping: TableMapping,
    records: Sequence[dict[str, Any]],
    groups: Sequence[tuple[FieldMapping, ...]],
    *,
    key: str,
    engine: SyncEngine,
    couplings: CouplingStore,
) -> tuple[list[str], list[str]]:
    """Couple what a chunk of BC records matches; returns (coupled BC ids, unmatched BC ids)."""
    remaining = {str(r["id"]).lower(): r for r in records}
    coupled: list[str] = []
    for group in groups:
        if not remaining:
            break
        criteria = {bc_id: match_criteria(group, r, engine.transforms) for bc_id, r in remaining.items()}
        clauses = [_clause(c) for c in criteria.values() if c]
        if not clauses:
            continue
        query = " or ".join(clauses)
        if mapping.dataverse_filter:
            query = f"({mapping.dataverse_filter}) and ({query})"
        rows = engine.destination_rows(mapping, query)
        taken = couplings.get_many_by_dataverse_ids(mapping.name, [str(r[key]).lower() for r in rows])
        for bc_id, record_criteria in criteria.items():
            outcome = classify_candidates(record_criteria, rows, key=key, coupled_dataverse_ids=set(taken))
            if outcome.verdict is not MatchVerdict.COUPLE or outcome.dataverse_id is None:
                continue
            try:
                couplings.couple(Coupling(mapping.name, bc_id, outcome.dataverse_id.lower()))
            except PermanentError:
                continue  # taken meanwhile (or by an earlier record of this chunk): no longer unique
            coupled.append(bc_id)
            remaining.pop(bc_id)
            taken[outcome.dataverse_id.lower()] = Coupling(mapping.name, bc_id, outcome.dataverse_id.lower())
    return coupled, list(remaining)


def run_match_coupling_job(
    mapping: TableMapping,
    job_id: str,
    *,
    bc: BusinessCentralPort,
    dataverse: DataversePort,
    couplings: CouplingStore,
    engine: SyncEngine,
    jobs: SyncJobStore,
    leases: LeaseStore,
    clock: Clock,
) -> SyncJob:
    """The background job behind ``POST /api/couplings/{mapping}/match``: couple, then finish the job row.

    Holds the mapping's lease: with "create new if no match" it creates records.

    Raises:
        MappingBusy: another writer kept the mapping's lease for a whole minute (redelivered later).
    """
    with hold_mapping(mapping.name, f"match:{job_id}", leases=leases, clock=clock, wait=timedelta(seconds=60)):
        result = couple_by_match(
            mapping, bc=bc, dataverse=dataverse, couplings=couplings, engine=engine, jobs=jobs, job_id=job_id
        )
    done = finish_job(mapping.name, job_id, jobs=jobs)
    if result.unmatched:
        return jobs.finish(mapping.name, job_id, done.status, unmatched_message(mapping, len(result.unmatched)))
    return done
