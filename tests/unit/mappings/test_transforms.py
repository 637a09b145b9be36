"""The named transforms field mappings use, each in both directions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.record_sync import EMPTY_GUID, LookupTable
from shared.domain.state import SyncDirection
from shared.mappings import transforms as t

pytestmark = pytest.mark.unit

TO, FROM = SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE
BASE = "5E0C0D8B-0000-4000-8000-0000000000AA"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-3, 0), (Decimal("-0.5"), 0), (0, 0), (12.5, 12.5), ("7", "7"), ("-2", 0), (None, None), ("n/a", "n/a")],
)
def test_non_negative_clamps_towards_dataverse(value: object, expected: object) -> None:
    assert t.non_negative(value, TO) == expected


def test_non_negative_leaves_values_coming_to_bc_alone() -> None:
    assert t.non_negative(-3, FROM) == -3


@pytest.mark.parametrize("blank", [None, "", "  ", EMPTY_GUID])
def test_blank_bc_currency_is_lcy(blank: object) -> None:
    assert t.lcy_currency(blank, TO) == t.LCY_LOOKUP_KEY


def test_a_real_currency_passes_through_both_ways() -> None:
    currency_id = "1b2c3d4e-0000-4000-8000-000000000001"
    assert t.lcy_currency(currency_id, TO) == currency_id
    assert t.lcy_currency(BASE, FROM) == BASE


def test_with_base_currency_resolves_lcy_both_ways_and_keeps_other_entries() -> None:
    lookups = LookupTable(to_dataverse={"CURRENCY": {"eur-bc": "eur-dv"}}, to_bc={"SALESPEOPLE": {"u": "JR"}})
    extended = t.with_base_currency(lookups, BASE)
    assert extended.resolve("CURRENCY", TO, t.LCY_LOOKUP_KEY) == BASE.lower()
    assert extended.resolve("CURRENCY", FROM, BASE) == EMPTY_GUID
    assert extended.resolve("CURRENCY", TO, "eur-bc") == "eur-dv"
    assert extended.resolve("SALESPEOPLE", FROM, "u") == "JR"
    assert t.LCY_LOOKUP_KEY not in lookups.to_dataverse["CURRENCY"]  # the input is not changed


@pytest.mark.parametrize(("blocked", "state", "status"), [(True, 1, 2), (False, 0, 1), (None, 0, 1)])
def test_item_blocked_to_product_state_and_status(blocked: object, state: int, status: int) -> None:
    assert t.item_blocked_product_state(blocked, TO) == state
    assert t.item_blocked_product_status(blocked, TO) == status


@pytest.mark.parametrize(("state", "blocked"), [(0, False), (1, True), (2, True), (3, True), (None, None)])
def test_product_state_to_item_blocked(state: object, blocked: object) -> None:
    assert t.item_blocked_product_state(state, FROM) == blocked


def test_unit_group_name_is_nav_prefixed_and_back() -> None:
    assert t.uom_schedule_name("PCS", TO) == "NAV PCS"
    assert t.uom_schedule_name("NAV PCS", TO) == "NAV PCS"  # never doubled
    assert t.uom_schedule_name("NAV PCS", FROM) == "PCS"
    assert t.uom_schedule_name(None, TO) is None


def test_option_label_becomes_a_bc_code() -> None:
    assert t.option_code("Net 30", FROM) == "NET 30"
    assert t.option_code("  2% 10, Net 30 ", FROM) == "2% 10, NET"
    assert t.option_code("30 DAYS", TO) == "30 DAYS"
    assert t.option_code(None, FROM) is None


def test_salesperson_code_is_stable_and_fits_code20() -> None:
    code = t.salesperson_code("1a2b3c4d-5e6f-4000-8000-000000000001", FROM)
    assert code == "SP 1A2B3C4D"
    assert len(code) <= 20
    assert t.salesperson_code("", FROM) == ""
    assert t.salesperson_code("JR", TO) == "JR"


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [("Jennifer Smith", "Jennifer", "Smith"), ("Anna van der Berg", "Anna van der", "Berg"), ("Cher", "", "Cher"),
     ("", "", ""), (None, "", "")],
)  # fmt: skip
def test_contact_display_name_splits_into_first_and_last(name: object, first: str, last: str) -> None:
    assert t.first_name(name, TO) == first
    assert t.last_name(name, TO) == last
    assert t.first_name("Jennifer Smith", FROM) == "Jennifer Smith"


def test_price_list_status_to_state() -> None:
    assert t.price_list_state("Active", TO) == 0
    assert t.price_list_state("Draft", TO) == 1
    assert t.price_list_state("Inactive", TO) == 1


def test_every_registered_transform_answers_both_directions_for_none() -> None:
    for name, transform in t.TRANSFORMS.items():
        for direction in (TO, FROM):
            transform(None, direction)  # must not raise
        assert name == transform.__name__
