"""E.2 items 12-15: document status, bound actions, customer payments, JSON $batch."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack


def _order(bc: Bc, customer: str = "C00020", quantity: int = 2) -> dict[str, Any]:
    response = bc.post(
        "salesOrders",
        {
            "customerNumber": customer,
            "externalDocumentNumber": "EXT-1",
            "salesOrderLines": [{"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": quantity}],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_ship_and_invoice_posts_invoice_and_shipment_and_removes_order(bc: Bc) -> None:
    order = _order(bc)
    response = bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    assert response.status_code == 204
    assert response.content == b""
    assert_bc_error(bc.get(f"salesOrders({order['id']})"), 404, "BadRequest_NotFound")
    invoice = bc.first("salesInvoices", f"orderNumber eq '{order['number']}'")
    assert invoice["status"] == "Open"
    assert invoice["orderId"] == order["id"]
    assert invoice["number"].startswith("PS-INV")
    assert invoice["remainingAmount"] == invoice["totalAmountIncludingTax"] == order["totalAmountIncludingTax"]
    shipment = bc.first("salesShipments", f"orderNumber eq '{order['number']}'")
    lines = bc.one(f"salesShipments({shipment['id']})/salesShipmentLines")["value"]
    assert [(line["lineObjectNumber"], line["quantity"]) for line in lines] == [("1900-S", 2)]


def test_ship_and_invoice_with_nothing_to_post(bc: Bc) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00020"}).json()
    response = bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    assert_bc_error(response, 400, "Application_DialogException")


def test_release_is_not_a_v2_action(bc: Bc) -> None:
    order = _order(bc)
    assert_bc_error(bc.post(f"salesOrders({order['id']})/Microsoft.NAV.release"), 404, "BadRequest_NotFound")


def test_invoice_post_keeps_the_id(bc: Bc) -> None:
    draft = bc.post(
        "salesInvoices",
        {
            "customerNumber": "C00010",
            "salesInvoiceLines": [{"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 1}],
        },
    ).json()
    assert draft["status"] == "Draft"
    assert draft["remainingAmount"] == 0
    assert bc.post(f"salesInvoices({draft['id']})/Microsoft.NAV.post").status_code == 204
    posted = bc.one(f"salesInvoices({draft['id']})")
    assert posted["status"] == "Open"
    assert posted["number"] != draft["number"]
    assert posted["remainingAmount"] == posted["totalAmountIncludingTax"] == 1210.97
    assert posted["lastModifiedDateTime"] > draft["lastModifiedDateTime"]


def test_quote_make_order_and_make_invoice(bc: Bc) -> None:
    def quote() -> dict[str, Any]:
        return dict(
            bc.post(
                "salesQuotes",
                {
                    "customerNumber": "C00010",
                    "salesQuoteLines": [{"lineType": "Item", "lineObjectNumber": "1920-S", "quantity": 3}],
                },
            ).json()
        )

    first = quote()
    assert bc.post(f"salesQuotes({first['id']})/Microsoft.NAV.makeOrder").status_code == 204
    assert bc.get(f"salesQuotes({first['id']})").status_code == 404
    orders = bc.one("salesOrders", **{"$filter": "customerNumber eq 'C00010'", "$expand": "salesOrderLines"})
    assert any(
        o["salesOrderLines"] and o["salesOrderLines"][0]["quantity"] == 3 and o["status"] == "Draft"
        for o in orders["value"]
    )
    second = quote()
    assert bc.post(f"salesQuotes({second['id']})/Microsoft.NAV.makeInvoice").status_code == 204
    drafts = bc.one("salesInvoices", **{"$filter": "status eq 'Draft'"})["value"]
    assert any(d["totalAmountExcludingTax"] == second["totalAmountExcludingTax"] for d in drafts)


def test_quote_send_and_expiry(bc: Bc) -> None:
    quote = bc.post("salesQuotes", {"customerNumber": "C00010", "validUntilDate": "2020-01-31"}).json()
    assert quote["status"] == "Expired"
    fresh = bc.post("salesQuotes", {"customerNumber": "C00010"}).json()
    assert bc.post(f"salesQuotes({fresh['id']})/Microsoft.NAV.send").status_code == 204
    sent = bc.one(f"salesQuotes({fresh['id']})")
    assert sent["status"] == "Sent"
    assert sent["sentDate"] != "0001-01-01T00:00:00Z"


def test_order_status_is_server_owned(bc: Bc) -> None:
    order = _order(bc)
    bc.door.call(
        "POST",
        "patch",
        {"company": bc.company_id, "entity": "salesOrders", "id": order["id"], "fields": {"status": "Open"}},
    )
    assert bc.one(f"salesOrders({order['id']})")["status"] == "Open"
    line = bc.post(f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Comment", "description": "late"})
    assert_bc_error(line, 400, "Application_FieldValidationException")


def test_payment_posting_pays_the_invoice(bc: Bc) -> None:
    order = _order(bc, customer="C00040", quantity=1)
    bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    invoice = bc.first("salesInvoices", f"orderNumber eq '{order['number']}'")
    customer = bc.first("customers", "number eq 'C00040'")
    balance_before = bc.one(f"customers({customer['id']})/customerFinancialDetail")["balance"]
    journal = bc.first("customerPaymentJournals", "code eq 'GENERAL'")
    payments = f"customerPaymentJournals({journal['id']})/customerPayments"
    half = round(invoice["totalAmountIncludingTax"] / 2, 2)
    first = bc.post(payments, {"customerNumber": "C00040", "amount": half, "appliesToInvoiceId": invoice["id"]})
    assert first.status_code == 201, first.text
    assert first.json()["appliesToInvoiceNumber"] == invoice["number"]
    assert first.json()["journalDisplayName"] == "Customer receipts"
    assert bc.post(f"journals({journal['id']})/Microsoft.NAV.post").status_code == 204
    partly = bc.one(f"salesInvoices({invoice['id']})")
    assert partly["status"] == "Open"
    assert partly["remainingAmount"] == pytest.approx(invoice["totalAmountIncludingTax"] - half)
    assert bc.one(payments)["value"] == []
    rest = partly["remainingAmount"]
    bc.post(payments, {"customerId": customer["id"], "amount": rest, "appliesToInvoiceNumber": invoice["number"]})
    bc.post(f"journals({journal['id']})/Microsoft.NAV.post")
    paid = bc.one(f"salesInvoices({invoice['id']})")
    assert paid["status"] == "Paid"
    assert paid["remainingAmount"] == 0
    assert paid["lastModifiedDateTime"] > partly["lastModifiedDateTime"]
    balance_after = bc.one(f"customers({customer['id']})/customerFinancialDetail")["balance"]
    assert balance_after == pytest.approx(balance_before - invoice["totalAmountIncludingTax"])


def test_customer_payment_journals_have_no_post_action(bc: Bc) -> None:
    journal = bc.first("customerPaymentJournals", "code eq 'GENERAL'")
    response = bc.post(f"customerPaymentJournals({journal['id']})/Microsoft.NAV.post")
    assert_bc_error(response, 404, "BadRequest_NotFound")


def _batch(bc: Bc, requests: list[dict[str, Any]], **headers: str) -> Any:
    response = bc.post("/$batch", {"requests": requests}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["responses"]


def test_batch_is_not_atomic_by_default(bc: Bc) -> None:
    company = f"companies({bc.company_id})"
    responses = _batch(
        bc,
        [
            {
                "id": "1",
                "method": "POST",
                "url": f"{company}/customers",
                "body": {"displayName": "Batch One"},
                "headers": {"Content-Type": "application/json"},
            },
            {"id": "2", "method": "POST", "url": f"{company}/customers", "body": {"displayName": "x" * 101}},
            {"id": "3", "method": "GET", "url": f"{company}/customers?$filter=displayName eq 'Batch One'"},
        ],
    )
    assert [r["id"] for r in responses] == ["1", "2", "3"]
    assert [r["status"] for r in responses] == [201, 400, 200]
    assert responses[1]["body"]["error"]["code"] == "Application_StringExceededLength"
    assert len(responses[2]["body"]["value"]) == 1


def test_batch_with_isolation_snapshot_rolls_back(bc: Bc) -> None:
    company = f"companies({bc.company_id})"
    responses = _batch(
        bc,
        [
            {"id": "a", "method": "POST", "url": f"{company}/customers", "body": {"displayName": "Atomic One"}},
            {"id": "b", "method": "POST", "url": f"{company}/customers", "body": {"displayName": "y" * 101}},
        ],
        Isolation="snapshot",
    )
    assert [r["status"] for r in responses] == [201, 400]
    assert bc.one("customers", **{"$filter": "displayName eq 'Atomic One'"})["value"] == []


def test_batch_over_100_requests_is_refused(bc: Bc) -> None:
    requests = [{"id": str(i), "method": "GET", "url": "companies"} for i in range(101)]
    assert_bc_error(bc.post("/$batch", {"requests": requests}), 400, "BadRequest")


def test_partial_ship_and_invoice_keeps_the_order(bc: Bc) -> None:
    order = _order(bc, quantity=5)
    line = bc.one(f"salesOrders({order['id']})/salesOrderLines")["value"][0]
    assert (line["shipQuantity"], line["invoiceQuantity"], line["shippedQuantity"]) == (5, 5, 0)
    too_many = bc.patch(f"salesOrders({order['id']})/salesOrderLines({line['id']})", {"shipQuantity": 6}, etag="*")
    assert_bc_error(too_many, 400, "Application_DialogException")
    bc.patch(f"salesOrders({order['id']})/salesOrderLines({line['id']})", {"shipQuantity": 2}, etag="*")
    assert bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204
    after = bc.one(f"salesOrders({order['id']})", **{"$expand": "salesOrderLines"})
    assert after["fullyShipped"] is False
    remaining = after["salesOrderLines"][0]
    assert (remaining["shippedQuantity"], remaining["invoicedQuantity"], remaining["shipQuantity"]) == (2, 2, 3)
    invoice = bc.one(
        "salesInvoices", **{"$filter": f"orderNumber eq '{order['number']}'", "$expand": "salesInvoiceLines"}
    )["value"]
    assert [i["salesInvoiceLines"][0]["quantity"] for i in invoice] == [2]
    assert bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204
    assert bc.get(f"salesOrders({order['id']})").status_code == 404
    invoices = bc.one("salesInvoices", **{"$filter": f"orderNumber eq '{order['number']}'"})["value"]
    assert len(invoices) == 2


def test_demo_order_and_quote_converted_order_can_be_posted(bc: Bc) -> None:
    demo = bc.first("salesOrders", "externalDocumentNumber eq 'PO-4800'")
    assert bc.post(f"salesOrders({demo['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204
    quote = bc.post(
        "salesQuotes",
        {
            "customerNumber": "C00020",
            "salesQuoteLines": [{"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 1}],
        },
    ).json()
    bc.post(f"salesQuotes({quote['id']})/Microsoft.NAV.makeOrder")
    order = bc.one("salesOrders", **{"$orderby": "number desc", "$top": "1"})["value"][0]
    assert bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204


def test_drop_after_commit_on_create(bc: Bc) -> None:
    import requests

    bc.door.drop_after_commit(method="POST", path=r"/customers$")
    with pytest.raises(requests.exceptions.ConnectionError):
        bc.post("customers", {"displayName": "Committed, answer lost"})
    assert bc.one("customers", **{"$filter": "displayName eq 'Committed, answer lost'"})["value"]
