"""Invoices created Billed, their Paid / Canceled states (and why a Paid one is re-activated before
it changes), and account statistics rows linked from accounts, as the BC → Sales jobs use them."""

from __future__ import annotations

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack

ADATUM = sid("account", "10000")


def _billed_invoice(dv: Dv) -> str:
    invoice = dv.create(
        "invoices",
        {
            "name": "PS-INV1",
            "invoicenumber": "PS-INV1",
            "customerid_account@odata.bind": f"/accounts({ADATUM})",
            "statecode": 0,
            "statuscode": 4,
        },
    )
    assert (invoice["statecode"], invoice["statuscode"]) == (0, 4)
    line = dv.post(
        "invoicedetails",
        {
            "invoiceid@odata.bind": f"/invoices({invoice['invoiceid']})",
            "isproductoverridden": True,
            "productdescription": "1900-S PARIS Guest Chair",
            "quantity": 2,
            "priceperunit": 100,
            "ispriceoverridden": True,
            "tax": 42,
        },
    )
    assert line.status_code == 204, line.text
    return str(invoice["invoiceid"])


def test_a_billed_invoice_rolls_up_its_lines_and_goes_paid_partial_then_complete(dv: Dv) -> None:
    invoice_id = _billed_invoice(dv)
    header = dv.get(f"invoices({invoice_id})").json()
    assert (header["totalamount"], header["totaltax"]) == (242, 42)
    assert dv.patch(f"invoices({invoice_id})", {"statecode": 2, "statuscode": 100002}).status_code == 204
    # Paid is read-only: its columns and its lines refuse changes until it is re-activated.
    refused = dv.patch(f"invoices({invoice_id})", {"name": "renamed"})
    assert refused.status_code == 400
    assert dv.patch(f"invoices({invoice_id})", {"statecode": 0, "statuscode": 4}).status_code == 204
    assert dv.patch(f"invoices({invoice_id})", {"statecode": 2, "statuscode": 100001}).status_code == 204
    paid = dv.get(f"invoices({invoice_id})", params={"$select": "statecode,statuscode"}).json()
    assert (paid["statecode"], paid["statuscode"]) == (2, 100001)


def test_a_status_of_another_state_is_refused(dv: Dv) -> None:
    invoice_id = _billed_invoice(dv)
    response = dv.patch(f"invoices({invoice_id})", {"statecode": 2, "statuscode": 4})
    assert response.status_code == 400
    assert "is not a valid status code" in response.json()["error"]["message"]


def test_a_statistics_row_is_linked_from_its_account_and_unlinked_accounts_can_be_found(dv: Dv) -> None:
    unlinked = dv.get("accounts", params={"$filter": "_nav_accountstatisticsid_value eq null", "$select": "accountid"})
    assert ADATUM in {a["accountid"] for a in unlinked.json()["value"]}
    row = dv.create(
        "nav_accountstatisticses",
        {
            "nav_name": "Adatum Corporation",
            "nav_customerno": "C00010",
            "nav_balancelcy": 1210.5,
            "nav_totallcy": 1210.5,
        },
    )
    link = {"nav_accountstatisticsid@odata.bind": f"/nav_accountstatisticses({row['nav_accountstatisticsid']})"}
    assert dv.patch(f"accounts({ADATUM})", link).status_code == 204
    account = dv.get(f"accounts({ADATUM})", params={"$select": "_nav_accountstatisticsid_value"}).json()
    assert account["_nav_accountstatisticsid_value"] == row["nav_accountstatisticsid"]
    after = dv.get("accounts", params={"$filter": "_nav_accountstatisticsid_value eq null", "$select": "accountid"})
    assert ADATUM not in {a["accountid"] for a in after.json()["value"]}
