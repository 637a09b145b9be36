"""Withheld permissions: BC's 403 naming the table data and the permission type; nothing else refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack


@pytest.fixture
def withheld(bc: Bc) -> Iterator[None]:
    bc.door.call("POST", "permissions", {"withhold": ["customers:Read", "salesOrderLines:Insert"]})
    yield
    bc.door.call("POST", "permissions", {"withhold": []})


def test_a_withheld_read_is_refused_with_the_table_named(bc: Bc, withheld: None) -> None:
    body = assert_bc_error(bc.get("customers?$top=1"), 403, "Internal_ServerError")
    assert "the current permissions prevented the action. (TableData 18 Customer Read" in body["error"]["message"]
    assert bc.get("items?$top=1").status_code == 200


def test_a_withheld_insert_on_lines_refuses_creating_them_only(bc: Bc, withheld: None) -> None:
    order = bc.get("salesOrders?$top=1").json()["value"][0]
    assert bc.get(f"salesOrders({order['id']})/salesOrderLines").status_code == 200
    body = assert_bc_error(
        bc.post(f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Comment", "description": "x"}),
        403,
        "Internal_ServerError",
    )
    assert "TableData 37 Sales Line Insert" in body["error"]["message"]


def test_an_unknown_permission_type_is_refused_by_the_back_door(bc: Bc) -> None:
    # The back door's own session: BackDoor.call raises on the 400 this test wants to see.
    answer = bc.door._session.post(
        f"{bc.door.url}/permissions", json={"withhold": ["customers:Browse"]}, headers=bc.door._headers, timeout=30
    )
    assert answer.status_code == 400 and "Browse" in answer.text
