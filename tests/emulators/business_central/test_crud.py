"""E.2 items 3-6 and 9-11: create, PATCH/DELETE with If-Match, etags, validation, deep insert."""

from __future__ import annotations

import re
import time

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack

ETAG = re.compile(r'^W/"[A-Za-z0-9+/=]+"$')
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _customer(bc: Bc, **fields: object) -> dict:
    response = bc.post("customers", {"displayName": "Test Customer", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_returns_201_with_full_body(bc: Bc) -> None:
    response = bc.post("customers", {"displayName": "Fabrikam", "email": "x@fabrikam.example"})
    assert response.status_code == 201
    body = response.json()
    assert ETAG.match(body["@odata.etag"])
    assert response.headers["ETag"] == body["@odata.etag"]
    assert re.match(r"^[0-9a-f-]{36}$", body["id"])
    assert body["number"].startswith("C")
    assert ISO_MS.match(body["lastModifiedDateTime"])
    assert body["type"] == "Company"
    assert body["blocked"] == " "
    assert body["balanceDue"] == 0
    assert response.headers["Location"].endswith(f"/customers({body['id']})")
    assert body["@odata.context"].endswith("/customers/$entity")


def test_order_create_fills_defaults_from_the_customer(bc: Bc) -> None:
    adatum = bc.first("customers", "number eq 'C00010'")
    response = bc.post("salesOrders", {"customerNumber": "C00010"})
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["customerId"] == adatum["id"]
    assert order["customerName"] == "Adatum Corporation"
    assert order["sellToCity"] == "Antwerpen"
    assert order["billToCustomerNumber"] == "C00010"
    assert order["currencyCode"] == "EUR"
    assert order["currencyId"] == "00000000-0000-0000-0000-000000000000"
    assert order["salesperson"] == "JO"
    assert order["paymentTermsId"] == adatum["paymentTermsId"]
    assert order["status"] == "Draft"
    assert order["number"].startswith("S-ORD")
    assert order["orderDate"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert order["requestedDeliveryDate"] == "0001-01-01"
    assert order["totalAmountIncludingTax"] == 0


def test_usd_customer_order_gets_usd(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00030"}).json()
    assert order["currencyCode"] == "USD"
    assert order["currencyId"] != "00000000-0000-0000-0000-000000000000"


def test_patch_without_if_match_is_400_invalid_token(bc: Bc) -> None:
    customer = _customer(bc)
    assert_bc_error(bc.patch(f"customers({customer['id']})", {"city": "Gent"}), 400, "BadRequest_InvalidToken")
    assert_bc_error(
        bc.patch(f"customers({customer['id']})", {"city": "Gent"}, etag="garbage"), 400, "BadRequest_InvalidToken"
    )


def test_patch_with_current_etag_is_200_with_new_etag(bc: Bc) -> None:
    customer = _customer(bc)
    response = bc.patch(f"customers({customer['id']})", {"city": "Gent"}, etag=customer["@odata.etag"])
    assert response.status_code == 200
    body = response.json()
    assert body["city"] == "Gent"
    assert body["@odata.etag"] != customer["@odata.etag"]
    assert body["lastModifiedDateTime"] > customer["lastModifiedDateTime"]


def test_stale_etag_is_409_entity_changed(bc: Bc) -> None:
    customer = _customer(bc)
    bc.patch(f"customers({customer['id']})", {"city": "Gent"}, etag=customer["@odata.etag"])
    stale = bc.patch(f"customers({customer['id']})", {"city": "Brugge"}, etag=customer["@odata.etag"])
    body = assert_bc_error(stale, 409, "Request_EntityChanged")
    assert body["error"]["message"].startswith("Another user has already changed the record.")


def test_star_if_match_is_accepted(bc: Bc) -> None:
    customer = _customer(bc)
    assert bc.patch(f"customers({customer['id']})", {"city": "Leuven"}, etag="*").status_code == 200


def test_delete_is_204_then_404(bc: Bc) -> None:
    customer = _customer(bc)
    stale_delete = bc.delete(f"customers({customer['id']})", etag='W/"JzE7Jw=="')
    assert_bc_error(stale_delete, 409, "Request_EntityChanged")
    assert bc.delete(f"customers({customer['id']})", etag=customer["@odata.etag"]).status_code == 204
    assert_bc_error(bc.get(f"customers({customer['id']})"), 404, "BadRequest_NotFound")
    assert not bc.one("customers", **{"$filter": f"id eq {customer['id']}"})["value"]


def test_line_change_updates_header_etag_and_timestamp(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00020"}).json()
    line = bc.post(
        f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 2}
    )
    assert line.status_code == 201, line.text
    after = bc.one(f"salesOrders({order['id']})")
    assert after["@odata.etag"] != order["@odata.etag"]
    assert after["lastModifiedDateTime"] > order["lastModifiedDateTime"]
    assert after["totalAmountExcludingTax"] == 385.6
    assert after["totalAmountIncludingTax"] == pytest.approx(466.58)


def test_string_too_long_is_string_exceeded_length(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00020"}).json()
    too_long = bc.post(f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Comment", "description": "x" * 101})
    body = assert_bc_error(too_long, 400, "Application_StringExceededLength")
    assert "101" in body["error"]["message"] and "100" in body["error"]["message"]
    assert_bc_error(
        bc.post(f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Comment", "description2": "y" * 51}),
        400,
        "Application_StringExceededLength",
    )


def test_document_without_or_with_unknown_customer_is_dialog_exception(bc: Bc) -> None:
    assert_bc_error(bc.post("salesOrders", {}), 400, "Application_DialogException")
    assert_bc_error(bc.post("salesOrders", {"customerNumber": "NOPE"}), 400, "Application_DialogException")


def test_blocked_customer_cannot_get_documents(bc: Bc) -> None:
    assert_bc_error(bc.post("salesOrders", {"customerNumber": "C00050"}), 400, "Application_FieldValidationException")


def test_unknown_property_is_400(bc: Bc) -> None:
    assert_bc_error(bc.post("customers", {"displayName": "A", "colour": "red"}), 400, "BadRequest")


def test_read_only_fields_are_rejected(bc: Bc) -> None:
    assert_bc_error(bc.post("customers", {"displayName": "A", "balanceDue": 5}), 400, "BadRequest_InvalidOperation")
    order = bc.post("salesOrders", {"customerNumber": "C00020"}).json()
    for field, value in (
        ("number", "X1"),
        ("status", "Open"),
        ("totalAmountIncludingTax", 1),
        ("lastModifiedDateTime", "2020-01-01T00:00:00Z"),
    ):
        response = bc.patch(f"salesOrders({order['id']})", {field: value}, etag="*")
        assert_bc_error(response, 400, "BadRequest_InvalidOperation")


def test_read_only_fields_can_be_switched_to_ignore(bc: Bc) -> None:
    bc.door.call("PATCH", "settings", {"read_only_fields": "ignore"})
    try:
        response = bc.post("customers", {"displayName": "Ignored RO", "balanceDue": 5})
        assert response.status_code == 201
        assert response.json()["balanceDue"] == 0
    finally:
        bc.door.call("PATCH", "settings", {"read_only_fields": "reject"})


def test_stale_etag_status_switchable_to_412(bc: Bc) -> None:
    bc.door.call("PATCH", "settings", {"stale_etag_status": 412})
    try:
        customer = _customer(bc)
        response = bc.patch(f"customers({customer['id']})", {"city": "X"}, etag='W/"JzE7Jw=="')
        assert_bc_error(response, 412, "Request_EntityChanged")
    finally:
        bc.door.call("PATCH", "settings", {"stale_etag_status": 409})


def test_deep_insert_creates_header_and_lines(bc: Bc) -> None:
    response = bc.post(
        "salesQuotes?$expand=salesQuoteLines",
        {
            "customerNumber": "C00010",
            "salesQuoteLines": [
                {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 1},
                {"lineType": "Item", "lineObjectNumber": "SVC-INSTALL", "quantity": 2, "unitPrice": 80},
                {"lineType": "Comment", "description": "Installation on site"},
            ],
        },
    )
    assert response.status_code == 201, response.text
    quote = response.json()
    lines = quote["salesQuoteLines"]
    assert [line["sequence"] for line in lines] == [10000, 20000, 30000]
    assert lines[0]["description"] == "ATHENS Desk"
    assert lines[0]["unitPrice"] == 1000.8
    assert lines[1]["unitOfMeasureCode"] == "HOUR"
    assert quote["totalAmountExcludingTax"] == 1160.8
    assert quote["status"] == "Draft"


def test_deep_insert_with_a_bad_line_leaves_nothing(bc: Bc) -> None:
    before = len(bc.one("salesQuotes")["value"])
    response = bc.post(
        "salesQuotes",
        {
            "customerNumber": "C00010",
            "salesQuoteLines": [
                {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 1},
                {"lineType": "Item", "lineObjectNumber": "NO-SUCH-ITEM", "quantity": 1},
            ],
        },
    )
    assert_bc_error(response, 400, "Application_DialogException")
    assert len(bc.one("salesQuotes")["value"]) == before


def test_deep_patch_is_rejected(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00010"}).json()
    response = bc.patch(f"salesOrders({order['id']})", {"salesOrderLines": [{"description": "x"}]}, etag="*")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest_NotSupported"


def test_line_validation(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00010"}).json()
    lines = f"salesOrders({order['id']})/salesOrderLines"
    desk = bc.first("items", "number eq '1896-S'")
    assert_bc_error(bc.post(lines, {"lineType": "Bogus"}), 400, "BadRequest")
    mismatch = bc.post(lines, {"lineType": "Item", "itemId": desk["id"], "lineObjectNumber": "1900-S"})
    assert_bc_error(mismatch, 400, "Application_DialogException")
    assert_bc_error(
        bc.post(lines, {"lineType": "Item", "lineObjectNumber": "1999-OLD", "quantity": 1}),
        400,
        "Application_FieldValidationException",
    )
    by_id = bc.post(lines, {"itemId": desk["id"], "quantity": 1})
    assert by_id.status_code == 201
    assert (by_id.json()["lineType"], by_id.json()["lineObjectNumber"]) == ("Item", "1896-S")


def test_posted_invoice_is_not_editable(bc: Bc) -> None:
    posted = bc.first("salesInvoices", "status eq 'Open'")
    assert_bc_error(
        bc.patch(f"salesInvoices({posted['id']})", {"externalDocumentNumber": "X"}, etag="*"),
        400,
        "Application_DialogException",
    )
    assert_bc_error(bc.delete(f"salesInvoices({posted['id']})"), 400, "Application_DialogException")


def test_shipments_are_read_only(bc: Bc) -> None:
    response = bc.post("salesShipments", {})
    assert_bc_error(response, 405, "BadRequest_MethodNotAllowed")
