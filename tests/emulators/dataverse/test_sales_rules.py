"""State machines and close actions, sales calculations, server-set fields (E.1 items 17-19)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack

ORDER = sid("salesorder", "Bikes for the Adatum fleet")
QUOTE = sid("quote", "Installation at Trey Research")
EUR_LIST = f"/pricelevels({sid('pricelevel', 'Standard EUR')})"
PIECE = f"/uoms({sid('uom', 'Primary Unit')})"


def _new_order(dv: Dv, **extra: Any) -> dict[str, Any]:
    return dv.create(
        "salesorders",
        {
            "name": "Rules",
            "customerid_account@odata.bind": f"/accounts({sid('account', '10000')})",
            "pricelevelid@odata.bind": EUR_LIST,
            **extra,
        },
    )


def _line(dv: Dv, order_id: str, **body: Any) -> Any:
    return dv.post(
        "salesorderdetails",
        {"salesorderid@odata.bind": f"/salesorders({order_id})", **body},
        headers={"Prefer": "return=representation"},
    )


def test_demo_order_totals_are_rolled_up(dv: Dv) -> None:
    order = dv.get(
        f"salesorders({ORDER})?$select=totallineitemamount,totalamount,freightamount,statecode,statuscode,ordernumber"
    ).json()
    assert order["totallineitemamount"] == 1872.3  # 4 x 450 - 100 + 4 x 39.95 + 12.50 write-in
    assert order["totalamount"] == 1897.3  # + 25 freight
    assert (order["statecode"], order["statuscode"]) == (1, 3)
    assert order["ordernumber"].startswith("ORD-")


def test_line_amounts_prices_and_write_ins(dv: Dv) -> None:
    order = _new_order(dv)
    order_id = order["salesorderid"]
    priced = _line(
        dv,
        order_id,
        **{
            "productid@odata.bind": f"/products({sid('product', '1000')})",
            "uomid@odata.bind": PIECE,
            "quantity": 2,
            "manualdiscountamount": 50,
            "tax": 10,
        },
    )
    assert priced.status_code == 201, priced.text
    line = priced.json()
    assert (line["priceperunit"], line["baseamount"], line["extendedamount"]) == (450.0, 900.0, 860.0)
    overridden = _line(
        dv,
        order_id,
        **{
            "productid@odata.bind": f"/products({sid('product', '1000')})",
            "uomid@odata.bind": PIECE,
            "quantity": 1,
            "priceperunit": 400,
            "ispriceoverridden": True,
        },
    ).json()
    assert overridden["priceperunit"] == 400.0
    write_in = _line(
        dv, order_id, isproductoverridden=True, productdescription="Custom paint", quantity=2, priceperunit=30
    )
    assert write_in.status_code == 201 and write_in.json()["baseamount"] == 60.0
    totals = dv.get(f"salesorders({order_id})?$select=totallineitemamount,totaltax,totalamount").json()
    assert (totals["totallineitemamount"], totals["totaltax"], totals["totalamount"]) == (1310.0, 10.0, 1320.0)
    assert dv.get(f"salesorders({order_id})").json()["@odata.etag"] != order["@odata.etag"]  # header touched

    no_description = _line(dv, order_id, isproductoverridden=True, quantity=1)
    assert no_description.status_code == 400
    both = _line(
        dv,
        order_id,
        isproductoverridden=True,
        productdescription="x",
        **{"productid@odata.bind": f"/products({sid('product', '1000')})"},
    )
    assert both.status_code == 400
    draft = _line(
        dv, order_id, **{"productid@odata.bind": f"/products({sid('product', '9000')})", "uomid@odata.bind": PIECE}
    )
    assert draft.status_code == 400 and "not active" in draft.json()["error"]["message"]
    not_on_list = _line(
        dv,
        order_id,
        **{
            "productid@odata.bind": f"/products({sid('product', '1000')})",
            "uomid@odata.bind": f"/uoms({sid('uom', 'Box of 12')})",
        },
    )
    assert not_on_list.status_code == 400
    too_long = _line(dv, order_id, isproductoverridden=True, productdescription="d" * 501, quantity=1)
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "0x80044331"


def test_submitted_orders_are_read_only_until_reactivated(dv: Dv) -> None:
    url = f"salesorders({ORDER})"
    blocked = dv.patch(url, {"name": "changed"})
    assert blocked.status_code == 400
    line_blocked = _line(dv, ORDER, isproductoverridden=True, productdescription="x", quantity=1)
    assert line_blocked.status_code == 400
    # BC's SetLastBackOfficeSubmit sequence: Active, update, Submitted again.
    assert dv.patch(url, {"statecode": 0, "statuscode": 1}).status_code == 204
    assert dv.patch(url, {"lastbackofficesubmit": "2026-11-24T00:00:00Z"}).status_code == 204
    assert dv.patch(url, {"statecode": 1, "statuscode": 3}).status_code == 204
    order = dv.get(f"{url}?$select=lastbackofficesubmit,statecode").json()
    assert order["lastbackofficesubmit"] == "2026-11-24T00:00:00Z" and order["statecode"] == 1


def test_state_status_pairs_are_validated(dv: Dv) -> None:
    order = _new_order(dv)
    url = f"salesorders({order['salesorderid']})"
    mismatch = dv.patch(url, {"statecode": 1, "statuscode": 1})
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["message"] == (
        "1 is not a valid status code for state code SalesOrderState.Submitted on salesorder with Id "
        f"{order['salesorderid']}."
    )
    assert dv.patch(url, {"statecode": 1}, headers={"Prefer": "return=representation"}).json()["statuscode"] == 3
    fulfil_by_patch = dv.patch(url, {"statecode": 3, "statuscode": 100001})
    assert fulfil_by_patch.status_code == 400 and "FulfillSalesOrder" in fulfil_by_patch.json()["error"]["message"]
    assert dv.patch(url, {"statecode": 4, "statuscode": 100003}).status_code == 204  # BC sets Invoiced by PATCH


def test_close_actions(dv: Dv) -> None:
    won = dv.post(
        "WinQuote", {"QuoteClose": {"subject": "Won", "quoteid@odata.bind": f"/quotes({QUOTE})"}, "Status": 4}
    )
    assert won.status_code == 204, won.text
    quote = dv.get(f"quotes({QUOTE})?$select=statecode,statuscode,closedon").json()
    assert (quote["statecode"], quote["statuscode"]) == (2, 4) and quote["closedon"]
    assert dv.patch(f"quotes({QUOTE})", {"name": "after win"}).status_code == 400
    again = dv.post(
        "WinQuote", {"QuoteClose": {"subject": "Won", "quoteid@odata.bind": f"/quotes({QUOTE})"}, "Status": 4}
    )
    assert again.status_code == 400

    bad_status = dv.post(
        "FulfillSalesOrder",
        {"OrderClose": {"subject": "x", "salesorderid@odata.bind": f"/salesorders({ORDER})"}, "Status": 5},
    )
    assert bad_status.status_code == 400
    fulfilled = dv.post(
        "FulfillSalesOrder",
        {"OrderClose": {"subject": "Done", "salesorderid@odata.bind": f"/salesorders({ORDER})"}, "Status": 100001},
    )
    assert fulfilled.status_code == 204
    order = dv.get(f"salesorders({ORDER})?$select=statecode,statuscode,datefulfilled").json()
    assert (order["statecode"], order["statuscode"]) == (3, 100001) and order["datefulfilled"]

    draft_quote = dv.create("quotes", {"name": "Draft", "pricelevelid@odata.bind": EUR_LIST})
    assert dv.patch(f"quotes({draft_quote['quoteid']})", {"name": "Draft edited"}).status_code == 204
    closed = dv.post(
        "CloseQuote",
        {"QuoteClose": {"subject": "Lost", "quoteid@odata.bind": f"/quotes({draft_quote['quoteid']})"}, "Status": 5},
    )
    assert closed.status_code == 204
    cancelled = _new_order(dv)
    assert (
        dv.post(
            "CancelSalesOrder",
            {
                "OrderClose": {
                    "subject": "No",
                    "salesorderid@odata.bind": f"/salesorders({cancelled['salesorderid']})",
                },
                "Status": 4,
            },
        ).status_code
        == 204
    )


def test_invoices_paid_are_read_only_and_products_start_as_draft(dv: Dv) -> None:
    invoice = dv.create(
        "invoices",
        {
            "name": "INV",
            "pricelevelid@odata.bind": EUR_LIST,
            "customerid_account@odata.bind": f"/accounts({sid('account', '10000')})",
        },
    )
    assert invoice["invoicenumber"].startswith("INV-") and (invoice["statecode"], invoice["statuscode"]) == (0, 1)
    url = f"invoices({invoice['invoiceid']})"
    assert dv.patch(url, {"statecode": 2, "statuscode": 100002}).status_code == 204
    assert dv.patch(url, {"name": "changed"}).status_code == 400
    product = dv.create("products", {"name": "New", "productnumber": "NEW-1", "productstructure": 1})
    assert (product["statecode"], product["statuscode"]) == (2, 0)


def test_server_set_fields(dv: Dv) -> None:
    order = _new_order(dv, ordernumber=None, createdon="2000-01-01T00:00:00Z", totalamount=999)
    assert order["ordernumber"].startswith("ORD-")
    assert order["createdon"] != "2000-01-01T00:00:00Z" and order["totalamount"] == 0.0
    assert order["_createdby_value"] == dv.line["application_user_id"]
    assert order["_ownerid_value"] == dv.line["application_user_id"]
    url = f"salesorders({order['salesorderid']})"
    usd = f"/transactioncurrencies({sid('transactioncurrency', 'USD')})"
    updated = dv.patch(
        url,
        {"transactioncurrencyid@odata.bind": usd, "ordernumber": "MINE", "name": "n"},
        headers={"Prefer": "return=representation"},
    ).json()
    assert updated["_transactioncurrencyid_value"] == sid("transactioncurrency", "EUR")  # insert-only: ignored
    assert updated["ordernumber"] == order["ordernumber"]
    assert updated["modifiedon"] >= order["modifiedon"]
    assert int(updated["versionnumber"]) > int(order["versionnumber"])
    quote = dv.create("quotes", {"name": "Numbers"})
    assert quote["quotenumber"].startswith("QUO-") and quote["revisionnumber"] == 0


def test_revise_quote_closes_the_old_one_and_opens_a_draft_revision(dv: Dv) -> None:
    old = dv.get(f"quotes({QUOTE})?$select=quotenumber,revisionnumber,totalamount").json()
    response = dv.post("ReviseQuote", {"QuoteId": QUOTE, "ColumnSet": {"AllColumns": True}})
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["quoteid"] != QUOTE
    assert (new["statecode"], new["statuscode"]) == (0, 1)
    assert new["quotenumber"] == old["quotenumber"] and new["revisionnumber"] == old["revisionnumber"] + 1
    assert new["totalamount"] == old["totalamount"]  # the lines came along
    closed = dv.get(f"quotes({QUOTE})?$select=statecode,statuscode").json()
    assert (closed["statecode"], closed["statuscode"]) == (3, 7)
    assert dv.post("ReviseQuote", {"QuoteId": new["quoteid"]}).status_code == 400  # a draft cannot be revised
