"""Posted invoice → Sales invoice plans, payment status and state steps (behaviour reference §6.1, §6.2)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.invoices import (
    ACTIVE_BILLED,
    CANCELED,
    PAID_COMPLETE,
    PAID_PARTIAL,
    InvoiceContext,
    InvoiceState,
    ProductRef,
    SalesOrderRef,
    invoice_line_row_id,
    invoice_row_id,
    payment_state,
    plan_invoice,
    state_steps,
)
from shared.errors import PermanentError

pytestmark = pytest.mark.unit

COMPANY = "3f5b0e3c-6a1d-4e0a-9a51-0c2b7d2f1a01"
ITEM = "11111111-1111-1111-1111-111111111111"
OTHER_ITEM = "22222222-2222-2222-2222-222222222222"


def _invoice(**changes: Any) -> dict[str, Any]:
    invoice = {
        "id": "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
        "number": "PS-INV103001",
        "status": "Open",
        "customerNumber": "C00010",
        "dueDate": "2026-02-04",
        "billToName": "Adatum",
        "billToCity": "Brussel",
        "shipToName": "Adatum",
        "discountAmount": 0,
        "totalAmountExcludingTax": 300,
        "totalTaxAmount": 63,
        "totalAmountIncludingTax": 363,
        "remainingAmount": 363,
        "pricesIncludeTax": False,
        "orderId": "00000000-0000-0000-0000-000000000000",
    }
    invoice.update(changes)
    return invoice


def _line(line_id: str, sequence: int, **changes: Any) -> dict[str, Any]:
    line = {
        "id": line_id,
        "sequence": sequence,
        "lineType": "Item",
        "itemId": ITEM,
        "lineObjectNumber": "1896-S",
        "description": "ATHENS Desk",
        "quantity": 2,
        "unitPrice": 100,
        "discountAmount": 0,
        "netTaxAmount": 42,
        "shipmentDate": "2026-01-20",
    }
    line.update(changes)
    return line


CONTEXT = InvoiceContext(
    account_id="acc00000-0000-0000-0000-000000000001",
    currency_id="cur00000-0000-0000-0000-000000000001",
    price_level_id="pl000000-0000-0000-0000-000000000001",
    owner_id="usr00000-0000-0000-0000-000000000001",
    payment_terms=1,
    products={ITEM: ProductRef("prd00000-0000-0000-0000-000000000001", "uom00000-0000-0000-0000-000000000001")},
)


def test_header_takes_customer_currency_price_list_owner_and_billed_status() -> None:
    plan = plan_invoice(COMPANY, _invoice(), [_line("l1", 10000)], CONTEXT)
    header = plan.header
    assert header["invoiceid"] == plan.invoice_id == invoice_row_id(COMPANY, _invoice()["id"])
    assert header["name"] == header["invoicenumber"] == "PS-INV103001"
    assert header["customerid"] == CONTEXT.account_id
    assert header["customerid@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert header["transactioncurrencyid"] == CONTEXT.currency_id
    assert header["pricelevelid"] == CONTEXT.price_level_id
    assert header["ownerid"] == CONTEXT.owner_id
    assert header["paymenttermscode"] == 1
    assert (header["statecode"], header["statuscode"]) == (0, 4)
    assert header["duedate"] == "2026-02-04T00:00:00Z"
    assert header["datedelivered"] == "2026-01-20T00:00:00Z"
    assert header["billto_city"] == "Brussel"
    assert "salesorderid" not in header


def test_ids_are_the_same_every_time_and_differ_per_invoice_and_line() -> None:
    first = plan_invoice(COMPANY, _invoice(), [_line("l1", 10000)], CONTEXT)
    again = plan_invoice(COMPANY, _invoice(), [_line("l1", 10000)], CONTEXT)
    other = plan_invoice(COMPANY, _invoice(id="bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"), [_line("l1", 10000)], CONTEXT)
    assert first == again
    assert other.invoice_id != first.invoice_id
    assert first.lines[0]["invoicedetailid"] == invoice_line_row_id(first.invoice_id, "l1")
    assert other.lines[0]["invoicedetailid"] != first.lines[0]["invoicedetailid"]


def test_coupled_items_become_product_lines_and_others_write_ins() -> None:
    lines = [
        _line("l1", 10000, discountAmount=10),
        _line("l2", 20000, itemId=OTHER_ITEM, lineObjectNumber="1920-S", description="ANTWERP Table"),
        _line("l3", 30000, lineType="Account", itemId=None, lineObjectNumber="6100", description="Freight"),
        _line("l4", 40000, lineType="Comment", quantity=0, unitPrice=0, netTaxAmount=0, description="note"),
    ]
    plan = plan_invoice(COMPANY, _invoice(), lines, CONTEXT)
    assert [line["lineitemnumber"] for line in plan.lines] == [10000, 20000, 30000]
    product, write_in, account = plan.lines
    assert product["productid"] == CONTEXT.products[ITEM].product_id
    assert product["uomid"] == CONTEXT.products[ITEM].uom_id
    assert product["isproductoverridden"] is False
    assert product["ispriceoverridden"] is True
    assert (product["priceperunit"], product["quantity"], product["manualdiscountamount"], product["tax"]) == (
        100.0,
        2.0,
        10.0,
        42.0,
    )
    assert write_in["isproductoverridden"] is True and "productid" not in write_in
    assert write_in["productdescription"] == "1920-S ANTWERP Table"
    assert account["productdescription"] == "6100 Freight"
    assert all(line["invoiceid"] == plan.invoice_id for line in plan.lines)


def test_an_invoice_from_a_coupled_order_takes_the_orders_name_price_list_owner_and_link() -> None:
    order = SalesOrderRef(
        salesorder_id="ord00000-0000-0000-0000-000000000001",
        name="Desks for Adatum",
        account_id=CONTEXT.account_id,
        price_level_id="pl000000-0000-0000-0000-000000000002",
        opportunity_id="opp00000-0000-0000-0000-000000000001",
        owner_id="usr00000-0000-0000-0000-000000000002",
    )
    context = InvoiceContext(**{**CONTEXT.__dict__, "order": order})
    header = plan_invoice(COMPANY, _invoice(), [_line("l1", 10000)], context).header
    assert header["salesorderid"] == order.salesorder_id
    assert header["name"] == "Desks for Adatum"
    assert header["pricelevelid"] == order.price_level_id
    assert header["opportunityid"] == order.opportunity_id
    assert header["ownerid"] == order.owner_id


def test_an_order_whose_customer_changed_refuses() -> None:
    order = SalesOrderRef(salesorder_id="ord00000-0000-0000-0000-000000000001", account_id="someone-else")
    context = InvoiceContext(**{**CONTEXT.__dict__, "order": order})
    with pytest.raises(PermanentError) as caught:
        plan_invoice(COMPANY, _invoice(orderNumber="S-ORD101001"), [_line("l1", 10000)], context)
    assert caught.value.code == "OrderCustomerChanged"
    assert "S-ORD101001" in caught.value.message


def test_draft_invoices_and_uncoupled_customers_refuse() -> None:
    with pytest.raises(PermanentError) as draft:
        plan_invoice(COMPANY, _invoice(status="Draft"), [], CONTEXT)
    assert draft.value.code == "NotPosted"
    with pytest.raises(PermanentError) as uncoupled:
        plan_invoice(COMPANY, _invoice(), [], InvoiceContext(account_id=None, currency_id=None))
    assert uncoupled.value.code == "CustomerNotCoupled"
    assert "C00010" in uncoupled.value.message


def test_prices_including_tax_take_the_tax_out_of_the_price_and_add_a_rounding_line() -> None:
    # 3 x 10.00 incl. 21 % tax: amount 24.79, tax 5.21; price 10 - round(5.21 / 3) = 8.26; 3 x 8.26 + 5.21 = 29.99.
    invoice = _invoice(pricesIncludeTax=True, totalAmountIncludingTax=30, totalAmountExcludingTax=24.79)
    plan = plan_invoice(COMPANY, invoice, [_line("l1", 10000, quantity=3, unitPrice=10, netTaxAmount=5.21)], CONTEXT)
    line, rounding = plan.lines
    assert line["priceperunit"] == 8.26
    assert rounding["productdescription"] == "Rounding"
    assert rounding["isproductoverridden"] is True
    assert (rounding["quantity"], rounding["priceperunit"], rounding["tax"]) == (1.0, 0.01, 0.0)
    assert rounding["lineitemnumber"] == 20000


def test_prices_excluding_tax_need_no_rounding_line() -> None:
    plan = plan_invoice(COMPANY, _invoice(totalAmountIncludingTax=242), [_line("l1", 10000)], CONTEXT)
    assert len(plan.lines) == 1


@pytest.mark.parametrize(
    ("status", "remaining", "total", "expected"),
    [
        ("Open", 363, 363, ACTIVE_BILLED),
        ("Open", 100, 363, PAID_PARTIAL),
        ("Paid", 0, 363, PAID_COMPLETE),
        ("Canceled", 0, 363, CANCELED),
        ("Corrective", 363, 363, CANCELED),
    ],
)
def test_payment_state_follows_the_remaining_amount(
    status: str, remaining: float, total: float, expected: InvoiceState
) -> None:
    invoice = {"status": status, "remainingAmount": remaining, "totalAmountIncludingTax": total}
    assert payment_state(invoice) == expected


def test_a_non_active_invoice_is_reactivated_before_it_changes() -> None:
    assert state_steps(ACTIVE_BILLED, ACTIVE_BILLED) == []
    assert state_steps(ACTIVE_BILLED, PAID_PARTIAL) == [PAID_PARTIAL]
    assert state_steps(PAID_PARTIAL, PAID_COMPLETE) == [ACTIVE_BILLED, PAID_COMPLETE]
    assert state_steps(PAID_COMPLETE, ACTIVE_BILLED) == [ACTIVE_BILLED]
    assert state_steps(PAID_PARTIAL, CANCELED) == [ACTIVE_BILLED, CANCELED]
    assert state_steps(InvoiceState(0, 1), ACTIVE_BILLED) == [ACTIVE_BILLED]
