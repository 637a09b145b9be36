"""E.2 items 7-8: $filter (incl. lastModifiedDateTime gt), $select, $orderby, $top, $skip, $expand, paging."""

from __future__ import annotations

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack


def test_last_modified_gt_with_millisecond_precision(bc: Bc) -> None:
    first = bc.post("customers", {"displayName": "Watermark A"}).json()
    second = bc.post("customers", {"displayName": "Watermark B"}).json()
    assert second["lastModifiedDateTime"] > first["lastModifiedDateTime"]
    after_first = bc.one("customers", **{"$filter": f"lastModifiedDateTime gt {first['lastModifiedDateTime']}"})
    names = [c["displayName"] for c in after_first["value"]]
    assert "Watermark B" in names and "Watermark A" not in names


def test_filter_operators(bc: Bc) -> None:
    assert [c["number"] for c in bc.one("customers", **{"$filter": "number eq 'C00020'"})["value"]] == ["C00020"]
    usd = bc.one("customers", **{"$filter": "currencyCode eq 'USD' and blocked eq ' '"})["value"]
    assert [c["number"] for c in usd] == ["C00030"]
    same_field_or = bc.one("customers", **{"$filter": "number eq 'C00010' or number eq 'C00020'"})["value"]
    assert {c["number"] for c in same_field_or} == {"C00010", "C00020"}
    assert bc.one("items", **{"$filter": "startswith(displayName,'PARIS')"})["value"][0]["number"] == "1900-S"
    assert bc.one("items", **{"$filter": "unitPrice gt 400 and unitPrice le 1000"})["value"][0]["number"] == "1920-S"
    assert bc.one("items", **{"$filter": "not (type eq 'Inventory')"})["value"][0]["number"] == "SVC-INSTALL"
    quoted = bc.one("customers", **{"$filter": "displayName eq 'O''Brien'"})["value"]
    assert quoted == []


def test_or_across_fields_is_refused(bc: Bc) -> None:
    response = bc.get("customers", params={"$filter": "number eq 'C00010' or city eq 'Gent'"})
    body = assert_bc_error(response, 400, "BadRequest_NotSupported")
    assert "The 'OR' operator is not supported on distinct fields" in body["error"]["message"]


def test_bad_filters_are_400(bc: Bc) -> None:
    assert_bc_error(bc.get("customers", params={"$filter": "colour eq 'red'"}), 400, "BadRequest")
    assert_bc_error(bc.get("customers", params={"$filter": "number eq"}), 400, "BadRequest")
    assert_bc_error(bc.get("customers", params={"$filter": "tolower(number) eq 'x'"}), 400, "BadRequest_NotSupported")
    assert_bc_error(bc.get("customers", params={"$filter": "creditLimit eq 'abc'"}), 400, "BadRequest")


def test_unsupported_query_options_are_loud(bc: Bc) -> None:
    for option in ("$search", "$apply", "$compute"):
        assert_bc_error(bc.get("customers", params={option: "x"}), 400, "BadRequest_NotSupported")


def test_select_orderby_top_skip(bc: Bc) -> None:
    page = bc.one("items", **{"$select": "number,unitPrice", "$orderby": "unitPrice desc", "$top": "2"})["value"]
    assert [set(p) for p in page] == [{"@odata.etag", "number", "unitPrice"}] * 2
    assert [p["number"] for p in page] == ["1896-S", "1920-S"]
    skipped = bc.one("items", **{"$orderby": "unitPrice desc", "$skip": "1", "$top": "1"})["value"]
    assert [p["number"] for p in skipped] == ["1920-S"]
    assert_bc_error(bc.get("items", params={"$select": "nope"}), 400, "BadRequest")


def test_expand_lines_and_lookups(bc: Bc) -> None:
    orders = bc.one("salesOrders", **{"$expand": "salesOrderLines,customer($select=number)"})["value"]
    order = next(o for o in orders if o["externalDocumentNumber"] == "PO-4800")
    assert [line["lineType"] for line in order["salesOrderLines"]] == ["Item", "Comment"]
    assert set(order["customer"]) == {"@odata.etag", "number"}
    customer = bc.one("customers", **{"$filter": "number eq 'C00010'", "$expand": "customerFinancialDetail"})
    detail = customer["value"][0]["customerFinancialDetail"]
    assert set(detail) == {"@odata.etag", "id", "number", "balance", "totalSalesExcludingTax", "overdueAmount"}
    assert_bc_error(bc.get("salesOrders", params={"$expand": "nothing"}), 400, "BadRequest")


def test_paging_with_maxpagesize_and_next_link(bc: Bc) -> None:
    for index in range(7):
        bc.post("items", {"displayName": f"Paging item {index}", "unitPrice": index})
    response = bc.get(
        "items",
        params={"$filter": "startswith(displayName,'Paging item')", "$orderby": "unitPrice"},
        headers={"Prefer": "odata.maxpagesize=3"},
    )
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"
    seen = []
    body = response.json()
    pages = 1
    while True:
        seen += [i["displayName"] for i in body["value"]]
        if "@odata.nextLink" not in body:
            break
        pages += 1
        body = bc.get(body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert pages == 3
    assert seen == [f"Paging item {i}" for i in range(7)]


def test_top_spans_pages(bc: Bc) -> None:
    body = bc.get("customers", params={"$top": "4"}, headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert len(body["value"]) == 3
    rest = bc.get(body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert len(rest["value"]) == 1
    assert "@odata.nextLink" not in rest


def test_page_size_over_maximum_is_refused(bc: Bc) -> None:
    response = bc.get("customers", headers={"Prefer": "odata.maxpagesize=20001"})
    assert response.status_code == 413


def test_lines_reachable_at_company_level_with_filter(bc: Bc) -> None:
    order = bc.first("salesOrders", "externalDocumentNumber eq 'PO-4800'")
    lines = bc.one("salesOrderLines", **{"$filter": f"documentId eq {order['id']}"})["value"]
    assert len(lines) == 2


def test_track_changes_is_ignored_and_no_delta_link(bc: Bc) -> None:
    body = bc.get("customers", headers={"Prefer": "odata.track-changes"}).json()
    assert "@odata.deltaLink" not in body
    assert body["value"]


def test_read_only_intent_refuses_writes(bc: Bc) -> None:
    response = bc.post("customers", {"displayName": "RO"}, headers={"Data-Access-Intent": "ReadOnly"})
    assert_bc_error(response, 400, "BadRequest")
    assert bc.get("customers", headers={"Data-Access-Intent": "ReadOnly"}).status_code == 200


def test_large_seed_pages_through_every_customer(bc: Bc) -> None:
    before = bc.door.snapshot()
    try:
        bc.door.seed({"name": "large:450"})
        numbers: list[str] = []
        prefer = {"Prefer": "odata.maxpagesize=200"}
        body = bc.get("customers", params={"$select": "number"}, headers=prefer).json()
        while True:
            numbers += [c["number"] for c in body["value"]]
            if "@odata.nextLink" not in body:
                break
            body = bc.get(body["@odata.nextLink"], headers=prefer).json()
        assert len(numbers) == len(set(numbers)) == 450
    finally:
        bc.door.restore(before)
