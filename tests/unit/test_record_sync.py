"""The per-record decision (behaviour reference §2.5) and the skip rule (§2.6), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.mapping import (
    DeletionConflictResolution,
    FieldMapping,
    TableMapping,
    UpdateConflictResolution,
)
from shared.domain.record_sync import (
    Action,
    LookupTable,
    SyncOptions,
    SyncRecord,
    coupling_after_failure,
    coupling_after_success,
    decide,
    unchanged_since_synced,
    values_equal,
)
from shared.domain.state import Coupling, SyncDirection

pytestmark = pytest.mark.unit

TO = SyncDirection.TO_DATAVERSE
FROM = SyncDirection.FROM_DATAVERSE
BI = SyncDirection.BIDIRECTIONAL
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SP_BC, SP_DV = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000001"
CUR_BC, CUR_DV = "aaaaaaaa-0000-0000-0000-0000000000c1", "bbbbbbbb-0000-0000-0000-0000000000c1"

MAPPING = TableMapping(
    name="CUSTOMER",
    bc_entity_set="customers",
    dataverse_entity_set="accounts",
    dataverse_key="accountid",
    direction=BI,
    fields=(
        FieldMapping("displayName", "name", BI),
        FieldMapping("city", "address1_city", BI),
        FieldMapping("creditLimit", "creditlimit", TO),
        FieldMapping("salespersonCode", "ownerid", TO, lookup="SALESPEOPLE", not_null=True),
        FieldMapping("currencyId", "transactioncurrencyid", BI, lookup="CURRENCY"),
        FieldMapping(None, "customertypecode", TO, constant=3),
        FieldMapping("blocked", None, FROM, constant=" "),
    ),
    dataverse_insert_defaults=(("statecode", 0),),
)
LOOKUPS = LookupTable(
    to_dataverse={"SALESPEOPLE": {"SP01": SP_DV}, "CURRENCY": {CUR_BC: CUR_DV}},
    to_bc={"SALESPEOPLE": {SP_DV: "SP01"}, "CURRENCY": {CUR_DV: CUR_BC}},
)
BC_VALUES: dict[str, Any] = {
    "displayName": "Adatum",
    "city": "Ghent",
    "creditLimit": 5000,
    "salespersonCode": "SP01",
    "currencyId": CUR_BC,
}
DV_VALUES: dict[str, Any] = {
    "name": "Adatum",
    "address1_city": "Ghent",
    "creditlimit": Decimal("5000.00"),
    "ownerid": SP_DV,
    "transactioncurrencyid": CUR_DV,
    "customertypecode": 3,
}


DEFAULT_OPTIONS = SyncOptions()


def _coupling(**changes: Any) -> Coupling:
    base = Coupling("CUSTOMER", "bc-1", "dv-1", bc_modified_at=T0, dataverse_modified_at=T0)
    return base.with_changes(**changes)


def _after(coupling: Coupling, direction: SyncDirection, at: datetime, **changes: Any) -> Coupling:
    """``coupling_after_success`` with both sides modified at ``at``, job "j" (override any)."""
    arguments: dict[str, Any] = {
        "source_modified_at": at,
        "destination_modified_at": at,
        "both_modified": False,
        "job_id": "j",
        "now": at,
        **changes,
    }
    return coupling_after_success(coupling, direction, **arguments)


def _decide(
    source_values: dict[str, Any],
    *,
    direction: SyncDirection = TO,
    source_at: datetime = T0,
    coupling: Coupling | None = None,
    destination: dict[str, Any] | None = None,
    destination_at: datetime = T0,
    mapping: TableMapping = MAPPING,
    options: SyncOptions = DEFAULT_OPTIONS,
) -> Any:
    source = SyncRecord("bc-1" if direction is TO else "dv-1", source_at, source_values)
    target = None if destination is None else SyncRecord("x", destination_at, destination)
    return decide(mapping, direction, source, coupling, target, lookups=LOOKUPS, transforms={}, options=options)


def test_uncoupled_record_is_ignored_when_the_mapping_syncs_only_coupled_records() -> None:
    decision = _decide(BC_VALUES)
    assert decision.action is Action.IGNORE and decision.action.counter is None


def test_uncoupled_record_is_inserted_with_lookups_constants_and_defaults_when_creating() -> None:
    decision = _decide(BC_VALUES, options=SyncOptions(create_uncoupled=True))
    assert decision.action is Action.INSERT
    assert decision.changes == {
        "statecode": 0,
        "name": "Adatum",
        "address1_city": "Ghent",
        "creditlimit": 5000,
        "ownerid": SP_DV,
        "transactioncurrencyid": CUR_DV,
        "customertypecode": 3,
    }


def test_an_uncoupled_dependency_fails_naming_it_and_what_to_do() -> None:
    decision = _decide(
        {**BC_VALUES, "currencyId": "aaaaaaaa-0000-0000-0000-0000000000ff"}, options=SyncOptions(create_uncoupled=True)
    )
    assert decision.action is Action.FAIL
    assert "must be coupled to a record in CURRENCY" in decision.message
    assert "couple or synchronize CURRENCY first" in decision.message


def test_not_null_lookup_that_is_blank_leaves_the_owner_alone() -> None:
    decision = _decide({**BC_VALUES, "salespersonCode": ""}, options=SyncOptions(create_uncoupled=True))
    assert decision.action is Action.INSERT and "ownerid" not in decision.changes


def test_clear_on_failed_sync_blanks_instead_of_failing() -> None:
    mapping = TableMapping(
        name="M",
        bc_entity_set="c",
        dataverse_entity_set="a",
        dataverse_key="accountid",
        direction=TO,
        fields=(FieldMapping("primaryContactId", "primarycontactid", TO, lookup="CONTACT", clear_on_failed_sync=True),),
        sync_only_coupled=False,
    )
    decision = _decide({"primaryContactId": "cccccccc-0000-0000-0000-000000000001"}, mapping=mapping)
    assert decision.action is Action.INSERT and decision.changes == {"primarycontactid": None}


def test_skipped_coupling_is_skipped() -> None:
    decision = _decide(
        BC_VALUES, coupling=_coupling(skipped=True), destination=DV_VALUES, source_at=T0 + timedelta(hours=1)
    )
    assert decision.action is Action.SKIP and decision.action.counter == "skipped"


def test_unchanged_source_is_unchanged_without_comparing_fields() -> None:
    decision = _decide({**BC_VALUES, "city": "Elsewhere"}, coupling=_coupling(), destination=DV_VALUES)
    assert decision.action is Action.UNCHANGED


def test_changed_source_writes_only_the_fields_that_differ() -> None:
    decision = _decide(
        {**BC_VALUES, "city": "Bruges"},
        coupling=_coupling(),
        destination=DV_VALUES,
        source_at=T0 + timedelta(minutes=1),
    )
    assert decision.action is Action.MODIFY
    assert decision.changes == {"address1_city": "Bruges"}  # 5000 == Decimal("5000.00"): not rewritten


def test_changed_source_with_equal_values_is_unchanged() -> None:
    decision = _decide(BC_VALUES, coupling=_coupling(), destination=DV_VALUES, source_at=T0 + timedelta(minutes=1))
    assert decision.action is Action.UNCHANGED


def test_a_previous_failure_counts_as_changed() -> None:
    decision = _decide(
        {**BC_VALUES, "city": "Bruges"}, coupling=_coupling(last_result_to_dataverse="Failure"), destination=DV_VALUES
    )
    assert decision.action is Action.MODIFY


def test_force_writes_unchanged_coupled_records() -> None:
    decision = _decide(
        {**BC_VALUES, "city": "Bruges"}, coupling=_coupling(), destination=DV_VALUES, options=SyncOptions(force=True)
    )
    assert decision.action is Action.MODIFY and decision.changes == {"address1_city": "Bruges"}


@pytest.mark.parametrize(
    ("resolution", "direction", "expected"),
    [
        (UpdateConflictResolution.NONE, TO, Action.FAIL),
        (UpdateConflictResolution.NONE, FROM, Action.FAIL),
        (UpdateConflictResolution.SEND_UPDATE_TO_DATAVERSE, TO, Action.MODIFY),
        (UpdateConflictResolution.SEND_UPDATE_TO_DATAVERSE, FROM, Action.SKIP),
        (UpdateConflictResolution.GET_UPDATE_FROM_DATAVERSE, FROM, Action.MODIFY),
        (UpdateConflictResolution.GET_UPDATE_FROM_DATAVERSE, TO, Action.SKIP),
    ],
)
def test_update_conflicts_follow_the_mapping_rule(
    resolution: UpdateConflictResolution, direction: SyncDirection, expected: Action
) -> None:
    mapping = MAPPING.__class__(**{**MAPPING.__dict__, "update_conflict": resolution})
    later = T0 + timedelta(minutes=5)
    if direction is TO:
        decision = _decide(
            {**BC_VALUES, "city": "Bruges"},
            coupling=_coupling(),
            source_at=later,
            destination={**DV_VALUES, "address1_city": "Antwerp"},
            destination_at=later,
            mapping=mapping,
        )
    else:
        decision = _decide(
            {**DV_VALUES, "address1_city": "Antwerp"},
            direction=FROM,
            coupling=_coupling(),
            source_at=later,
            destination={**BC_VALUES, "city": "Bruges"},
            destination_at=later,
            mapping=mapping,
        )
    assert decision.action is expected
    assert decision.both_modified
    if expected is Action.FAIL:
        assert "is bi-directional, and one or both values have changed" in decision.message


def test_both_changed_but_only_one_way_fields_differ_is_no_conflict() -> None:
    later = T0 + timedelta(minutes=5)
    decision = _decide(
        {**BC_VALUES, "creditLimit": 9000},
        coupling=_coupling(),
        source_at=later,
        destination=DV_VALUES,
        destination_at=later,
    )
    assert decision.action is Action.MODIFY and decision.changes == {"creditlimit": 9000}


@pytest.mark.parametrize(
    ("resolution", "expected"),
    [
        (DeletionConflictResolution.NONE, Action.FAIL),
        (DeletionConflictResolution.REMOVE_COUPLING, Action.UNCOUPLE),
        (DeletionConflictResolution.RESTORE_RECORDS, Action.RESTORE),
    ],
)
def test_deletion_conflicts_follow_the_mapping_rule(resolution: DeletionConflictResolution, expected: Action) -> None:
    mapping = MAPPING.__class__(**{**MAPPING.__dict__, "deletion_conflict": resolution})
    decision = _decide(BC_VALUES, coupling=_coupling(), destination=None, mapping=mapping)
    assert decision.action is expected
    if expected is Action.RESTORE:
        assert decision.changes["name"] == "Adatum" and decision.changes["statecode"] == 0
    if expected is Action.FAIL:
        assert "coupled to a deleted record" in decision.message


def test_a_pass_the_mapping_does_not_allow_fails() -> None:
    mapping = MAPPING.__class__(**{**MAPPING.__dict__, "direction": TO})
    decision = _decide(DV_VALUES, direction=FROM, coupling=_coupling(), destination=BC_VALUES, mapping=mapping)
    assert decision.action is Action.FAIL and "not configured for fromDataverse" in decision.message


def test_from_dataverse_translates_lookups_back_and_writes_bc_constants() -> None:
    decision = _decide(
        {**DV_VALUES, "name": "Adatum NV"},
        direction=FROM,
        coupling=_coupling(),
        source_at=T0 + timedelta(minutes=1),
        destination={**BC_VALUES, "blocked": " "},
    )
    assert decision.action is Action.MODIFY and decision.changes == {"displayName": "Adatum NV"}


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (None, "", True),
        ("  x ", "x", True),
        ("00000000-0000-0000-0000-000000000000", None, True),
        ("AAAAAAAA-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000001", True),
        (5000, Decimal("5000.00"), True),
        ("12.50", 12.5, True),
        ("x", "X", False),
        (True, 1, False),
        (0, None, True),
        (Decimal("0.00"), "", True),
        (False, None, False),
        (1, None, False),
    ],
)
def test_value_comparison(left: Any, right: Any, equal: bool) -> None:
    assert values_equal(left, right) is equal


def test_same_error_twice_skips_and_a_different_one_does_not() -> None:
    coupling = _coupling()
    once = coupling_after_failure(coupling, TO, message="A", job_id="j1", now=T0)
    assert once.last_result_to_dataverse == "Failure" and not once.skipped and once.consecutive_failures == 1
    different = coupling_after_failure(once, TO, message="B", job_id="j2", now=T0)
    assert not different.skipped and different.consecutive_failures == 2
    again = coupling_after_failure(different, TO, message="B", job_id="j3", now=T0)
    assert again.skipped
    # The other direction's failure history is its own.
    other = coupling_after_failure(once, FROM, message="A", job_id="j4", now=T0)
    assert not other.skipped and other.last_result_to_bc == "Failure"


def test_success_moves_timestamps_and_leaves_a_merge_marker_when_both_changed() -> None:
    written_at = T0 + timedelta(minutes=3)
    plain = coupling_after_success(
        _coupling(last_result_to_dataverse="Failure", last_error="x"),
        TO,
        source_modified_at=T0 + timedelta(minutes=2),
        destination_modified_at=written_at,
        both_modified=False,
        job_id="j",
        now=written_at,
    )
    assert (plain.bc_modified_at, plain.dataverse_modified_at) == (T0 + timedelta(minutes=2), written_at)
    assert plain.last_result_to_dataverse == "Success" and plain.last_error is None
    merged = coupling_after_success(
        _coupling(),
        TO,
        source_modified_at=T0,
        destination_modified_at=written_at,
        both_modified=True,
        job_id="j",
        now=written_at,
    )
    assert merged.dataverse_modified_at == written_at - timedelta(milliseconds=999)
    back = coupling_after_success(
        _coupling(),
        FROM,
        source_modified_at=T0,
        destination_modified_at=written_at,
        both_modified=True,
        job_id="j",
        now=written_at,
    )
    assert back.bc_modified_at == written_at - timedelta(milliseconds=10) and back.last_result_to_bc == "Success"


def test_an_unchanged_record_moves_only_the_source_timestamp() -> None:
    # BC re-read unchanged (the watermark's overlap, or a first run) while a seller changed the
    # Sales row: storing the row's new time would hide the seller's change from the Sales pass.
    seller_changed_at = T0 + timedelta(minutes=5)
    stored = _coupling(bc_modified_at=T0, dataverse_modified_at=T0)
    after = coupling_after_success(
        stored,
        TO,
        source_modified_at=T0,
        destination_modified_at=seller_changed_at,
        both_modified=False,
        job_id="j",
        now=seller_changed_at,
        written=False,
    )
    assert after.dataverse_modified_at == T0 and after.bc_modified_at == T0


def test_an_unchanged_record_leaves_its_coupling_unwritten_unless_a_failure_is_cleared() -> None:
    # A second full sync or a watermark's overlap re-reads unchanged records: their couplings
    # must compare equal afterwards, so the engine writes none of them.
    stored = _coupling(last_result_to_dataverse="Success", last_synced_at=T0, last_job_id="first")
    later = T0 + timedelta(hours=1)
    again = coupling_after_success(
        stored,
        TO,
        source_modified_at=T0,
        destination_modified_at=later,
        both_modified=False,
        job_id="second",
        now=later,
        written=False,
    )
    assert again == stored
    moved = _after(stored, FROM, later, job_id="second", written=False)
    assert moved == stored.with_changes(dataverse_modified_at=later)
    failed = _coupling(last_result_to_dataverse="Failure", last_error="boom", consecutive_failures=1)
    cleared = coupling_after_success(
        failed,
        TO,
        source_modified_at=T0,
        destination_modified_at=later,
        both_modified=False,
        job_id="second",
        now=later,
        written=False,
    )
    assert cleared.last_result_to_dataverse == "Success" and cleared.last_error is None
    assert cleared.consecutive_failures == 0 and cleared.last_job_id == "second"
    assert cleared.dataverse_modified_at == T0


def test_a_merge_written_to_sales_is_flagged_for_the_sales_pass_until_it_reads_it_back() -> None:
    # The BC pass overwrote a Sales row that had changed too; the connector is now its last
    # modifier, so the echo rule alone would keep the Sales pass from ever carrying the rest.
    later = T0 + timedelta(minutes=1)
    merged = _after(_coupling(), TO, later, both_modified=True)
    assert merged.recheck_in_sales
    plain = _after(_coupling(), TO, later)
    assert not plain.recheck_in_sales
    read_back = _after(merged, FROM, later, job_id="k", written=False)
    assert not read_back.recheck_in_sales and read_back.dataverse_modified_at == later


def test_a_sales_change_in_the_same_second_as_the_last_sync_is_seen_by_its_row_version() -> None:
    # modifiedon keeps whole seconds: a seller's edit in the second of the connector's own write
    # has the same modifiedon as the coupling stores. The row version tells them apart.
    synced = _coupling(dataverse_version=41)
    edited = SyncRecord("dv-1", T0, {**DV_VALUES, "address1_city": "Antwerp"}, version=42)
    decision = decide(MAPPING, FROM, edited, synced, SyncRecord("bc-1", T0, BC_VALUES), lookups=LOOKUPS, transforms={})
    assert decision.action is Action.MODIFY and decision.changes == {"city": "Antwerp"}
    assert not unchanged_since_synced(synced, FROM, T0, DEFAULT_OPTIONS, source_version=42)
    assert unchanged_since_synced(synced, FROM, T0, DEFAULT_OPTIONS, source_version=41)
    # Toward Sales the same edit makes both sides changed, so a differing field is a conflict.
    both = decide(
        MAPPING,
        TO,
        SyncRecord("bc-1", T0 + timedelta(minutes=1), {**BC_VALUES, "city": "Bruges"}),
        synced,
        SyncRecord("dv-1", T0, {**DV_VALUES, "address1_city": "Antwerp"}, version=42),
        lookups=LOOKUPS,
        transforms={},
    )
    assert both.both_modified and both.action is Action.FAIL


def test_the_row_version_is_stored_with_the_timestamps_and_nudged_with_them() -> None:
    later = T0 + timedelta(minutes=1)
    stored = _after(_coupling(dataverse_version=7), TO, later, destination_version=9)
    assert stored.dataverse_version == 9
    merged = _after(_coupling(dataverse_version=7), TO, later, both_modified=True, destination_version=9)
    assert merged.dataverse_version == 8 and merged.recheck_in_sales  # read back by the Sales pass
    read = _after(merged, FROM, later, job_id="k", written=False, source_version=9)
    assert read.dataverse_version == 9 and not read.recheck_in_sales


def test_a_pair_coupled_by_hand_is_brought_in_line_not_held_as_both_changed() -> None:
    # No previous sync: nothing to say the Sales row changed "since", so no merge, no conflict.
    fresh = Coupling("CUSTOMER", "bc-1", "dv-1")
    decision = _decide(
        {**BC_VALUES, "city": "Bruges"},
        coupling=fresh,
        destination={**DV_VALUES, "address1_city": "Antwerp"},
    )
    assert decision.action is Action.MODIFY and not decision.both_modified
    assert decision.changes == {"address1_city": "Bruges"}
