"""What the posted-invoice, payment status and statistics jobs read: a posted invoice keeps its
order's id and number, documents expand their lines with a nested $select, and the computed
customerFinancialDetails answer the same filters as stored sets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulators.business_central.conftest import Bc

pytestmark = pytest.mark.stack


def _order(bc: Bc, customer: str, quantity: int) -> dict[str, Any]:
    response = bc.post(
        "salesOrders",
        {
            "customerNumber": customer,
            "salesOrderLines": [
                {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": quantity},
                {"lineType": "Comment", "description": "fragile"},
            ],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_posted_invoice_keeps_the_id_and_number_of_the_order_it_came_from(bc: Bc) -> None:
    order = _order(bc, "C00030", 2)
    assert bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204
    invoice = bc.first("salesInvoices", f"orderNumber eq '{order['number']}'")
    assert invoice["orderId"] == order["id"]
    assert invoice["status"] == "Open"
    assert invoice["remainingAmount"] == invoice["totalAmountIncludingTax"]


def test_posted_invoices_expand_their_lines_with_a_nested_select(bc: Bc) -> None:
    customer = bc.first("customers", "number eq 'C00030'")
    body = bc.one(
        "salesInvoices",
        **{
            "$filter": f"(customerId eq {customer['id']}) and (status eq 'Open' or status eq 'Paid')",
            "$select": "id,number,customerId",
            "$expand": "salesInvoiceLines($select=id,sequence,lineType,netTaxAmount)",
        },
    )
    assert body["value"], "the posted invoice of C00030"
    for invoice in body["value"]:
        assert set(invoice) >= {"id", "number", "customerId", "salesInvoiceLines"}
        assert "totalAmountIncludingTax" not in invoice
        for line in invoice["salesInvoiceLines"]:
            assert set(line) - {"@odata.etag"} == {"id", "sequence", "lineType", "netTaxAmount"}
        assert [line["lineType"] for line in invoice["salesInvoiceLines"]] == ["Item", "Comment"]


def test_a_partly_shipped_order_reports_shipped_and_invoiced_quantities_on_its_lines(bc: Bc) -> None:
    order = _order(bc, "C00040", 5)
    lines = bc.one(f"salesOrders({order['id']})/salesOrderLines")["value"]
    item = next(line for line in lines if line["lineType"] == "Item")
    assert bc.patch(f"salesOrderLines({item['id']})", {"shipQuantity": 2}, etag="*").status_code == 200
    assert bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice").status_code == 204
    body = bc.one(
        "salesOrders",
        **{
            "$filter": f"id eq {order['id']}",
            "$expand": "salesOrderLines($select=quantity,shippedQuantity,invoicedQuantity,netAmountIncludingTax)",
        },
    )
    (line,) = [x for x in body["value"][0]["salesOrderLines"] if x["quantity"]]
    assert (line["quantity"], line["shippedQuantity"], line["invoicedQuantity"]) == (5, 2, 2)
    assert line["netAmountIncludingTax"] > 0


def test_financial_details_are_read_by_id_like_any_set(bc: Bc) -> None:
    customers = bc.one("customers", **{"$select": "id,number"})["value"][:2]
    ids = " or ".join(f"id eq {c['id']}" for c in customers)
    details = bc.one("customerFinancialDetails", **{"$filter": ids})["value"]
    assert sorted(d["number"] for d in details) == sorted(c["number"] for c in customers)
    assert all({"balance", "totalSalesExcludingTax", "overdueAmount"} <= set(d) for d in details)
