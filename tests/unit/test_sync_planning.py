"""Watermark windows, match-based coupling verdicts and full-sync review planning, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.full_sync import (
    LineStatus,
    Recommendation,
    ReviewLine,
    SideCounts,
    dependency_order,
    recommend,
    review_lines,
    run_finished,
    startable,
)
from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.matching import MatchVerdict, classify_candidates, match_criteria, match_groups
from shared.domain.state import SyncDirection
from shared.domain.watermarks import next_watermark, plan_window
from shared.errors import PermanentError

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _mapping(name: str, *deps: str, fields: tuple[FieldMapping, ...] = ()) -> TableMapping:
    return TableMapping(name, "x", "y", "yid", SyncDirection.BIDIRECTIONAL, fields, dependencies=deps)


def test_first_window_reads_everything_up_to_the_signpost() -> None:
    window = plan_window(None, START)
    assert window.since is None and window.until == START - timedelta(seconds=2)


def test_window_reaches_back_by_the_overlap() -> None:
    window = plan_window("2026-11-24T09:00:00.5Z", START)
    assert window.since == datetime(2026, 11, 24, 8, 59, 55, 500000, tzinfo=UTC)


def test_watermark_never_passes_the_signpost_nor_moves_back() -> None:
    window = plan_window("2026-11-24T09:00:00Z", START)
    assert next_watermark("2026-11-24T09:00:00Z", START + timedelta(minutes=5), window) == "2026-11-24T09:59:58.000000Z"
    assert next_watermark("2026-11-24T09:00:00Z", START - timedelta(hours=3), window) == "2026-11-24T09:00:00.000000Z"
    assert next_watermark("2026-11-24T09:00:00Z", None, window) == "2026-11-24T09:00:00.000000Z"
    assert next_watermark(None, None, window) is None


MATCHED = _mapping(
    "CUSTOMER",
    fields=(
        FieldMapping("displayName", "name", SyncDirection.BIDIRECTIONAL, match=MatchRule(priority=1)),
        FieldMapping("email", "emailaddress1", SyncDirection.BIDIRECTIONAL, match=MatchRule(priority=0)),
        FieldMapping("number", "accountnumber", SyncDirection.TO_DATAVERSE, match=MatchRule(0, case_sensitive=True)),
        FieldMapping("city", "address1_city", SyncDirection.BIDIRECTIONAL),
    ),
)


def test_match_groups_in_priority_order() -> None:
    groups = match_groups(MATCHED)
    assert [[f.bc_field for f in g] for g in groups] == [["email", "number"], ["displayName"]]
    with pytest.raises(PermanentError, match="should be used for match-based coupling"):
        match_groups(_mapping("CONTACT"))


def test_blank_values_give_no_criterion() -> None:
    criteria = match_criteria(match_groups(MATCHED)[0], {"email": "  ", "number": "C001"})
    assert [(c.dataverse_field, c.value, c.case_sensitive) for c in criteria] == [("accountnumber", "C001", True)]


def test_verdicts() -> None:
    group = match_groups(MATCHED)[1]
    criteria = match_criteria(group, {"displayName": "Adatum"})
    rows = [{"accountid": "A1", "name": "ADATUM "}]
    assert classify_candidates(criteria, rows, key="accountid", coupled_dataverse_ids=set()).dataverse_id == "A1"
    assert classify_candidates(criteria, rows, key="accountid", coupled_dataverse_ids={"a1"}).verdict is (
        MatchVerdict.ALREADY_COUPLED
    )
    two = [*rows, {"accountid": "A2", "name": "adatum"}]
    assert classify_candidates(criteria, two, key="accountid", coupled_dataverse_ids=set()).verdict is (
        MatchVerdict.MULTIPLE_MATCHES
    )
    assert (
        classify_candidates(criteria, [], key="accountid", coupled_dataverse_ids=set()).verdict is MatchVerdict.NO_MATCH
    )
    assert classify_candidates([], rows, key="accountid", coupled_dataverse_ids=set()).verdict is (
        MatchVerdict.NO_CRITERIA
    )
    sensitive = match_criteria(match_groups(MATCHED)[0], {"number": "c001"})
    assert (
        classify_candidates(
            sensitive, [{"accountid": "A1", "accountnumber": "C001"}], key="accountid", coupled_dataverse_ids=set()
        ).verdict
        is MatchVerdict.NO_MATCH
    )


@pytest.mark.parametrize(
    ("name", "counts", "expected"),
    [
        ("SALESPEOPLE", SideCounts(0, 0), Recommendation.FULL_SYNCHRONIZATION),
        ("CURRENCY", SideCounts(3, 1, dataverse_only_base_currency=True), Recommendation.FULL_SYNCHRONIZATION),
        ("CURRENCY", SideCounts(3, 2), Recommendation.COUPLE_RECORDS),
        ("PAYMENT TERMS", SideCounts(0, 5), Recommendation.NO_RECORDS_FOUND),
        ("PAYMENT TERMS", SideCounts(4, 5), Recommendation.COUPLE_RECORDS),
        ("UNIT OF MEASURE", SideCounts(5, 1), Recommendation.FULL_SYNCHRONIZATION),
        ("CUSTOMER", SideCounts(0, 0), Recommendation.NO_RECORDS_FOUND),
        ("CUSTOMER", SideCounts(5, 0), Recommendation.FULL_SYNCHRONIZATION),
        ("CUSTOMER", SideCounts(5, 7), Recommendation.COUPLE_RECORDS),
    ],
)
def test_recommendations(name: str, counts: SideCounts, expected: Recommendation) -> None:
    assert recommend(name, counts) is expected


def test_dependencies_chain_and_nothing_to_do_counts_as_satisfied() -> None:
    mappings = [
        _mapping("CONTACT", "CUSTOMER"),
        _mapping("CUSTOMER", "SALESPEOPLE", "CURRENCY", "PAYMENT TERMS"),
        _mapping("CURRENCY"),
        _mapping("SALESPEOPLE"),
        _mapping("PAYMENT TERMS"),
    ]
    counts = {
        "CONTACT": SideCounts(3, 0),
        "CUSTOMER": SideCounts(3, 0),
        "CURRENCY": SideCounts(2, 0),
        "SALESPEOPLE": SideCounts(1, 1),
        "PAYMENT TERMS": SideCounts(0, 0),
    }
    lines = review_lines(mappings, counts)
    assert [line.mapping for line in lines] == ["CURRENCY", "SALESPEOPLE", "PAYMENT TERMS", "CUSTOMER", "CONTACT"]
    assert startable(lines) == ["CURRENCY", "SALESPEOPLE"]

    def with_status(current: list[ReviewLine], **status: LineStatus) -> list[ReviewLine]:
        return [
            line.__class__(**{**line.__dict__, "status": status.get(line.mapping.replace(" ", "_"), line.status)})
            for line in current
        ]

    lines = with_status(lines, CURRENCY=LineStatus.FINISHED)
    assert startable(lines) == ["SALESPEOPLE"]
    lines = with_status(lines, SALESPEOPLE=LineStatus.FINISHED)
    assert startable(lines) == ["CUSTOMER"]
    lines = with_status(lines, CUSTOMER=LineStatus.ERROR)
    assert startable(lines) == [] and run_finished(lines)


def test_a_dependency_cycle_is_named() -> None:
    with pytest.raises(ValueError, match="cycle: A, B"):
        dependency_order([_mapping("A", "B"), _mapping("B", "A")])
