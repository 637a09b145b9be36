"""Coupling lookups of whole sync slices: one row-key range when the keys are dense, the
``or``-chunks when they are spread, and couplings read by Dataverse id updated conditionally."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.tables import TableCouplingStore, TableState
from shared.domain.state import Coupling, SyncDirection
from shared.errors import RetriableError
from shared.resources import TABLE_COUPLINGS

pytestmark = pytest.mark.stack


@pytest.fixture
def couplings(state: TableState) -> TableCouplingStore:
    return TableCouplingStore(state.table(TABLE_COUPLINGS))


@pytest.fixture
def mapping() -> str:
    return f"BULK-{uuid.uuid4().hex[:8]}"


def _couple(store: TableCouplingStore, mapping: str, count: int) -> list[Coupling]:
    stored = store.couple_many([Coupling(mapping, str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(count)])
    assert all(isinstance(c, Coupling) for c in stored)
    return [c for c in stored if isinstance(c, Coupling)]


def test_dense_and_spread_lookups_find_exactly_the_coupled_keys(couplings: TableCouplingStore, mapping: str) -> None:
    stored = sorted(_couple(couplings, mapping, 400), key=lambda c: c.bc_id)
    dense = stored[100:300]  # one narrow range of the partition: answered by a range query
    missing = [str(uuid.uuid4()) for _ in range(20)]
    found = couplings.get_many_by_bc_ids(mapping, [c.bc_id for c in dense] + missing)
    assert {k: c.dataverse_id for k, c in found.items()} == {c.bc_id: c.dataverse_id for c in dense}
    spread = stored[::3]  # keys all over the partition: the range would read too much
    found = couplings.get_many_by_bc_ids(mapping, [c.bc_id for c in spread])
    assert set(found) == {c.bc_id for c in spread}
    by_dataverse = couplings.get_many_by_dataverse_ids(mapping, [c.dataverse_id for c in stored])
    assert {k: c.bc_id for k, c in by_dataverse.items()} == {c.dataverse_id: c.bc_id for c in stored}


def test_couplings_read_by_dataverse_id_update_conditionally(couplings: TableCouplingStore, mapping: str) -> None:
    stored = _couple(couplings, mapping, 60)
    read = couplings.get_many_by_dataverse_ids(mapping, [c.dataverse_id for c in stored])
    stale = read[stored[7].dataverse_id]
    couplings.update(stale.with_changes(consecutive_failures=2))  # another worker, meanwhile

    results = couplings.update_many([c.with_changes(last_result_to_bc="Success") for c in read.values()])

    refused = [r for r in results if not isinstance(r, Coupling)]
    assert len(refused) == 1 and isinstance(refused[0], RetriableError)
    after = couplings.get_many_by_bc_ids(mapping, [c.bc_id for c in stored])
    assert sum(c.last_result_to_bc == "Success" for c in after.values()) == 59
    assert after[stale.bc_id].consecutive_failures == 2
    # What update_many returned carries the pair's fresh etag, ready for the next write.
    again = next(r for r in results if isinstance(r, Coupling))
    couplings.update(again.with_changes(skipped=True))
    assert couplings.get_by_dataverse_id(mapping, again.dataverse_id).skipped  # type: ignore[union-attr]


def test_pairs_written_in_bulk_read_back_with_every_field(couplings: TableCouplingStore, mapping: str) -> None:
    # Bulk writes build their own transaction body: every field must come back as it went in.
    when = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    full = [
        Coupling(
            mapping,
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            bc_modified_at=when,
            dataverse_modified_at=when - timedelta(seconds=i),
            last_synced_at=when,
            last_result_to_bc="Failure",
            last_result_to_dataverse="Success",
            last_job_id=f"job-{i}",
            last_error="it's 'quoted' & long " * 20,
            consecutive_failures=i,
            skipped=i % 2 == 0,
            recheck_in_sales=i == 1,
            dataverse_version=None if i == 2 else 2**40 + i,
        )
        for i in range(3)
    ]
    stored = couplings.couple_many(full)
    assert all(isinstance(c, Coupling) for c in stored)
    read = couplings.get_many_by_bc_ids(mapping, [c.bc_id for c in full])
    assert [read[c.bc_id].with_changes(etag=None) for c in full] == full
    updated = couplings.update_many([read[c.bc_id].with_changes(last_error=None, skipped=False) for c in full])
    assert all(isinstance(c, Coupling) for c in updated)
    again = couplings.get_many_by_dataverse_ids(mapping, [c.dataverse_id for c in full])
    assert [again[c.dataverse_id].with_changes(etag=None) for c in full] == [
        c.with_changes(last_error=None, skipped=False) for c in full
    ]


def test_the_sales_pass_retry_list_holds_failures_and_rows_to_read_back(
    couplings: TableCouplingStore, mapping: str
) -> None:
    failed, flagged, settled = _couple(couplings, mapping, 3)
    couplings.update(failed.with_changes(last_result_to_bc="Failure"))
    couplings.update(flagged.with_changes(recheck_in_sales=True))
    couplings.update(settled.with_changes(last_result_to_bc="Success"))
    due = {c.bc_id for c in couplings.list_couplings(mapping, failed_toward=SyncDirection.FROM_DATAVERSE)}
    assert due == {failed.bc_id, flagged.bc_id}
    # Toward Sales only failures count: the flag is about reading the Sales row.
    assert list(couplings.list_couplings(mapping, failed_toward=SyncDirection.TO_DATAVERSE)) == []


def test_a_mappings_pairs_read_whole_or_not_at_all_past_the_limit(couplings: TableCouplingStore, mapping: str) -> None:
    stored = _couple(couplings, mapping, 1_050)  # more than one page of 1,000
    assert couplings.pairs(mapping, limit=5_000) == {c.bc_id: c.dataverse_id for c in stored}
    assert couplings.pairs(mapping, limit=1_000) is None
    assert couplings.pairs(f"{mapping}-EMPTY", limit=10) == {}
