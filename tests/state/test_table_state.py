"""The Table Storage state layer against a real Azurite: couplings, jobs, errors, watermarks."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from emulators.azurite import Azurite
from shared.adapters.clock import SystemClock
from shared.adapters.tables import (
    TableCouplingStore,
    TableState,
    TableSyncErrorStore,
    TableSyncJobStore,
    TableWatermarkStore,
    open_table_state,
)
from shared.adapters.tables.sync_jobs import new_job_id
from shared.config import TableStorageSettings
from shared.domain.state import (
    Coupling,
    JobCounters,
    JobStatus,
    JobType,
    SyncDirection,
    SyncErrorRecord,
    SyncJob,
    Watermark,
)
from shared.errors import PermanentError, RetriableError
from shared.resources import TABLE_COUPLINGS, TABLES

pytestmark = pytest.mark.stack


@pytest.fixture
def couplings(state: TableState) -> TableCouplingStore:
    return TableCouplingStore(state.table(TABLE_COUPLINGS))


def _ids() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


def test_every_state_table_is_created_idempotently(azurite: Azurite, state: TableState) -> None:
    again = open_table_state(TableStorageSettings(connection_string=azurite.connection_string))
    names = {t.name for t in again.service.list_tables()}
    again.close()
    assert set(TABLES) <= names


def test_coupling_resolves_from_both_sides(couplings: TableCouplingStore, unique_mapping: str) -> None:
    bc_id, dv_id = _ids()
    modified = datetime(2026, 11, 1, 8, 30, 15, 123000, tzinfo=UTC)
    stored = couplings.couple(Coupling(unique_mapping, bc_id, dv_id, bc_modified_at=modified))

    by_bc = couplings.get_by_bc_id(unique_mapping, bc_id)
    by_dv = couplings.get_by_dataverse_id(unique_mapping, dv_id)
    assert by_bc == by_dv == stored
    assert by_bc is not None and by_bc.bc_modified_at == modified
    assert couplings.get_by_bc_id(unique_mapping, str(uuid.uuid4())) is None
    # Another mapping does not see it.
    assert couplings.get_by_bc_id(unique_mapping + "-OTHER", bc_id) is None


def test_coupling_either_side_twice_is_refused_and_changes_nothing(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    bc_id, dv_id = _ids()
    couplings.couple(Coupling(unique_mapping, bc_id, dv_id))

    with pytest.raises(PermanentError) as same_bc:
        couplings.couple(Coupling(unique_mapping, bc_id, str(uuid.uuid4())))
    assert same_bc.value.code == "CouplingConflict"
    assert f"already coupled to Dataverse row {dv_id}" in same_bc.value.message

    other_bc = str(uuid.uuid4())
    with pytest.raises(PermanentError) as same_dv:
        couplings.couple(Coupling(unique_mapping, other_bc, dv_id))
    assert f"already coupled to BC record {bc_id}" in same_dv.value.message

    # The refused transactions wrote neither row.
    assert couplings.get_by_bc_id(unique_mapping, other_bc) is None
    assert [c.bc_id for c in couplings.list_couplings(unique_mapping)] == [bc_id]


def test_concurrent_double_couple_of_one_record_has_exactly_one_winner(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    bc_id = str(uuid.uuid4())
    candidates = [str(uuid.uuid4()) for _ in range(8)]
    barrier = threading.Barrier(len(candidates))
    outcomes: list[str] = []

    def attempt(dv_id: str) -> None:
        barrier.wait()
        try:
            couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
            outcomes.append("won")
        except PermanentError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(dv,)) for dv in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["CouplingConflict"] * 7 + ["won"]
    winner = couplings.get_by_bc_id(unique_mapping, bc_id)
    assert winner is not None
    # The losers left no orphan Dataverse-side rows behind.
    assert [dv for dv in candidates if couplings.get_by_dataverse_id(unique_mapping, dv)] == [winner.dataverse_id]


def test_update_is_conditional_on_what_was_read(couplings: TableCouplingStore, unique_mapping: str) -> None:
    bc_id, dv_id = _ids()
    couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
    first_read = couplings.get_by_bc_id(unique_mapping, bc_id)
    second_read = couplings.get_by_dataverse_id(unique_mapping, dv_id)
    assert first_read is not None and second_read is not None

    now = datetime.now(UTC)
    updated = couplings.update(first_read.with_changes(last_synced_at=now, last_result_to_dataverse="Success"))
    with pytest.raises(RetriableError) as stale:
        couplings.update(second_read.with_changes(skipped=True))
    assert stale.value.code == "ConcurrencyConflict"

    # Both rows carry the winner's state; the stale write changed neither.
    for read in (couplings.get_by_bc_id(unique_mapping, bc_id), couplings.get_by_dataverse_id(unique_mapping, dv_id)):
        assert read is not None
        assert read.last_result_to_dataverse == "Success" and read.skipped is False
    # The returned coupling carries fresh etags, so it can be updated again.
    again = couplings.update(updated.with_changes(consecutive_failures=2))
    assert again.consecutive_failures == 2


def test_uncouple_removes_both_rows(couplings: TableCouplingStore, unique_mapping: str) -> None:
    bc_id, dv_id = _ids()
    couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
    removed = couplings.uncouple(unique_mapping, bc_id)
    assert removed is not None and removed.dataverse_id == dv_id
    assert couplings.get_by_bc_id(unique_mapping, bc_id) is None
    assert couplings.get_by_dataverse_id(unique_mapping, dv_id) is None
    assert couplings.uncouple(unique_mapping, bc_id) is None
    # Once uncoupled, either side can be coupled anew.
    couplings.couple(Coupling(unique_mapping, bc_id, str(uuid.uuid4())))


def test_bulk_lookup_both_ways_across_many_filter_chunks(couplings: TableCouplingStore, unique_mapping: str) -> None:
    pairs = [_ids() for _ in range(40)]
    for bc_id, dv_id in pairs:
        couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
    strangers = [str(uuid.uuid4()) for _ in range(5)]

    by_bc = couplings.get_many_by_bc_ids(unique_mapping, [b for b, _ in pairs] + strangers)
    by_dv = couplings.get_many_by_dataverse_ids(unique_mapping, [d for _, d in pairs] + strangers)
    assert {b: c.dataverse_id for b, c in by_bc.items()} == dict(pairs)
    assert {d: c.bc_id for d, c in by_dv.items()} == {d: b for b, d in pairs}
    assert couplings.get_many_by_bc_ids(unique_mapping, []) == {}


def test_ids_with_characters_table_keys_forbid(couplings: TableCouplingStore, unique_mapping: str) -> None:
    # Option mappings couple BC codes, which may contain '/', '#', '?' and quotes.
    bc_code = "NET 30/60 #1 ?'%"
    dv_value = "option:100000001"
    couplings.couple(Coupling(unique_mapping, bc_code, dv_value))
    found = couplings.get_by_bc_id(unique_mapping, bc_code)
    assert found is not None and found.dataverse_id == dv_value
    assert couplings.get_many_by_bc_ids(unique_mapping, [bc_code])[bc_code].dataverse_id == dv_value


def test_skipped_couplings_can_be_listed(couplings: TableCouplingStore, unique_mapping: str) -> None:
    skipped_bc, skipped_dv = _ids()
    couplings.couple(Coupling(unique_mapping, skipped_bc, skipped_dv, skipped=True))
    couplings.couple(Coupling(unique_mapping, *_ids()))
    assert [c.bc_id for c in couplings.list_couplings(unique_mapping, skipped_only=True)] == [skipped_bc]
    assert len(list(couplings.list_couplings(unique_mapping))) == 2


def _job(mapping: str) -> SyncJob:
    started = datetime.now(UTC)
    return SyncJob(
        job_id=new_job_id(started),
        mapping=mapping,
        job_type=JobType.SYNCHRONIZATION,
        direction=SyncDirection.TO_DATAVERSE,
        started_at=started,
    )


def test_job_counters_from_concurrent_workers_all_count(state: TableState, unique_mapping: str) -> None:
    jobs = TableSyncJobStore(state.table("SyncJobs"), SystemClock())
    job = jobs.start(_job(unique_mapping))
    workers = 6

    def report() -> None:
        for _ in range(3):
            jobs.add_counts(unique_mapping, job.job_id, JobCounters(inserted=1, unchanged=2, failed=1))

    threads = [threading.Thread(target=report) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    finished = jobs.finish(unique_mapping, job.job_id, JobStatus.SUCCEEDED, "done")
    assert finished.counters == JobCounters(inserted=18, unchanged=36, failed=18)
    stored = jobs.get(unique_mapping, job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.SUCCEEDED and stored.finished_at is not None and stored.message == "done"
    assert stored.counters == finished.counters
    with pytest.raises(PermanentError):
        jobs.add_counts(unique_mapping, "no-such-job", JobCounters(inserted=1))


def test_jobs_list_newest_first(state: TableState, unique_mapping: str) -> None:
    jobs = TableSyncJobStore(state.table("SyncJobs"), SystemClock())
    base = datetime.now(UTC)
    ids = []
    for minutes in (0, 5, 10):
        started = base + timedelta(minutes=minutes)
        job = SyncJob(new_job_id(started), unique_mapping, JobType.COUPLING, SyncDirection.FROM_DATAVERSE, started)
        ids.append(jobs.start(job).job_id)
    assert [j.job_id for j in jobs.list_jobs(unique_mapping)] == list(reversed(ids))
    assert [j.job_id for j in jobs.list_jobs(unique_mapping, limit=2)] == list(reversed(ids))[:2]
    assert {j.job_id for j in jobs.list_jobs()} >= set(ids)


def test_sync_errors_are_stored_and_listed(state: TableState, unique_mapping: str) -> None:
    errors = TableSyncErrorStore(state.table("SyncErrors"))
    record = SyncErrorRecord(
        error_id=new_job_id(datetime.now(UTC)),
        mapping=unique_mapping,
        job_id="job-1",
        source="bc:customers(1)",
        destination="dataverse:accounts",
        message="Salesperson SP01 is not coupled (SALESPEOPLE); couple it first.",
        detail="x" * 70_000,  # longer than a Table Storage property may hold
        created_at=datetime.now(UTC),
    )
    errors.add(record)
    errors.add(record)  # a retried write does not duplicate
    listed = errors.list_errors(unique_mapping)
    assert len(listed) == 1
    assert listed[0].message == record.message and len(listed[0].detail) == 16_000


def test_watermark_moves_forward_only_and_conditionally(state: TableState, unique_mapping: str) -> None:
    marks = TableWatermarkStore(state.table("Watermarks"))
    assert marks.get(unique_mapping, "bc") is None
    first = marks.advance(Watermark(unique_mapping, "bc", "2026-11-24T10:00:00.5Z"))
    with pytest.raises(RetriableError):
        marks.advance(Watermark(unique_mapping, "bc", "2026-11-24T11:00:00Z"))  # a second "first" write

    # Fewer fractional digits but later in time: must count as later, not as text.
    second = marks.advance(first.__class__(unique_mapping, "bc", "2026-11-24T10:00:01Z", etag=first.etag))
    stored = marks.get(unique_mapping, "bc")
    assert stored is not None and stored.value == "2026-11-24T10:00:01Z"

    behind = marks.advance(Watermark(unique_mapping, "bc", "2026-11-24T09:00:00Z", etag=second.etag))
    assert behind.value == "2026-11-24T10:00:01Z"
    with pytest.raises(RetriableError):
        marks.advance(Watermark(unique_mapping, "bc", "2026-11-24T12:00:00Z", etag=first.etag))  # stale read


def test_couplings_from_bulk_reads_can_be_updated_without_another_read(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    pairs = [_ids() for _ in range(3)]
    for bc_id, dv_id in pairs:
        couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
    by_bc = couplings.get_many_by_bc_ids(unique_mapping, [b for b, _ in pairs])
    by_dv = couplings.get_many_by_dataverse_ids(unique_mapping, [d for _, d in pairs])
    first_bc, first_dv = pairs[0]
    couplings.update(by_bc[first_bc].with_changes(skipped=True))
    # The Dataverse-side bulk read was taken before that write: it is stale now.
    with pytest.raises(RetriableError):
        couplings.update(by_dv[first_dv].with_changes(consecutive_failures=5))
    _, second_dv = pairs[1]
    couplings.update(by_dv[second_dv].with_changes(consecutive_failures=1))
    mirror = couplings.get_by_dataverse_id(unique_mapping, second_dv)
    assert mirror is not None and mirror.consecutive_failures == 1
    assert couplings.get_by_bc_id(unique_mapping, first_bc).skipped  # type: ignore[union-attr]


def test_updating_a_coupling_removed_meanwhile_is_a_conflict(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    bc_id, dv_id = _ids()
    stored = couplings.couple(Coupling(unique_mapping, bc_id, dv_id))
    couplings.uncouple(unique_mapping, bc_id)
    with pytest.raises(RetriableError):
        couplings.update(stored.with_changes(skipped=True))
    assert couplings.get_by_dataverse_id(unique_mapping, dv_id) is None


def test_couple_many_writes_pairs_in_bulk_and_reports_each_refusal(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    taken_bc, taken_dv = _ids()
    couplings.couple(Coupling(unique_mapping, taken_bc, taken_dv))
    fresh = [Coupling(unique_mapping, *_ids()) for _ in range(120)]
    clash = Coupling(unique_mapping, str(uuid.uuid4()), taken_dv)  # that Dataverse row is coupled already
    batch = [*fresh[:60], clash, *fresh[60:]]

    results = couplings.couple_many(batch)

    assert len(results) == len(batch)
    refused = [r for r in results if not isinstance(r, Coupling)]
    assert len(refused) == 1 and isinstance(refused[0], PermanentError) and refused[0].code == "CouplingConflict"
    assert results[60] is refused[0]
    stored = couplings.get_many_by_bc_ids(unique_mapping, [c.bc_id for c in fresh])
    assert {b: c.dataverse_id for b, c in stored.items()} == {c.bc_id: c.dataverse_id for c in fresh}
    # Each stored coupling comes back with its etag, ready for an update.
    couplings.update(results[0].with_changes(skipped=True))  # type: ignore[union-attr]


def test_update_many_writes_in_bulk_and_refuses_only_the_stale_pair(
    couplings: TableCouplingStore, unique_mapping: str
) -> None:
    stored = [
        c
        for c in couplings.couple_many([Coupling(unique_mapping, *_ids()) for _ in range(70)])
        if isinstance(c, Coupling)
    ]
    assert len(stored) == 70
    stale = stored[10]
    couplings.update(stale.with_changes(consecutive_failures=1))  # someone else wrote it meanwhile

    results = couplings.update_many([c.with_changes(last_result_to_dataverse="Success") for c in stored])

    refused = [i for i, r in enumerate(results) if not isinstance(r, Coupling)]
    assert refused == [10]
    assert isinstance(results[10], RetriableError)
    after = couplings.get_many_by_bc_ids(unique_mapping, [c.bc_id for c in stored])
    assert sum(c.last_result_to_dataverse == "Success" for c in after.values()) == 69
    assert after[stale.bc_id].consecutive_failures == 1  # the other worker's write stands
