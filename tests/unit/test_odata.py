"""OData literals: data never becomes query syntax."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.errors import PermanentError
from shared.odata import any_of, field_name, guid_literal, key_segment, literal, string_literal

pytestmark = pytest.mark.unit


def test_quotes_are_doubled_so_a_name_cannot_close_the_literal() -> None:
    hostile = "O'Neil' or 1 eq 1 or name eq '"
    assert string_literal(hostile) == "'O''Neil'' or 1 eq 1 or name eq '''"
    assert any_of("name", [hostile]) == "(name eq 'O''Neil'' or 1 eq 1 or name eq ''')"


def test_guids_are_validated() -> None:
    value = str(uuid.uuid4()).upper()
    assert guid_literal(value) == value.lower()
    for bad in ("1 or 1 eq 1", "", "00000000-0000-0000-0000-00000000000g"):
        with pytest.raises(PermanentError) as raised:
            guid_literal(bad)
        assert raised.value.code == "InvalidGuid"


def test_key_segments() -> None:
    assert key_segment("5B1E6E33-37E3-4E3A-8C1B-6C1B0D3E2A11") == "(5b1e6e33-37e3-4e3a-8c1b-6c1b0d3e2a11)"
    assert key_segment("NET 30'") == "('NET 30''')"


def test_literals_of_each_type() -> None:
    assert literal(None) == "null" and literal(True) == "true" and literal(12) == "12"
    assert literal(Decimal("12.50")) == "12.50"
    moment = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert literal(moment) == "2026-11-24T09:00:00.123Z"
    assert literal(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


def test_property_names_are_checked() -> None:
    assert field_name("address1_city") == "address1_city" and field_name("customer/id") == "customer/id"
    with pytest.raises(PermanentError):
        field_name("name eq 'x' or 1")
