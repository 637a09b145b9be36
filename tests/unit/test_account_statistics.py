"""nav_accountstatistics from BC API v2.0 figures (behaviour reference §6.3)."""

from __future__ import annotations

from datetime import date

import pytest

from shared.domain.statistics import CustomerActivity, account_statistics, statistics_changes

pytestmark = pytest.mark.unit

CUSTOMER = {"id": "c1", "number": "C00010", "displayName": "Adatum Corporation", "creditLimit": 5000}
FINANCIAL = {"balance": 1210.5, "totalSalesExcludingTax": 2000, "overdueAmount": 300.25}


def _order() -> dict[str, object]:
    return {
        "salesOrderLines": [
            # 4 ordered, 3 shipped, 1 invoiced: 1 outstanding, 2 shipped not invoiced of 484.
            {
                "lineType": "Item",
                "quantity": 4,
                "shippedQuantity": 3,
                "invoicedQuantity": 1,
                "netAmountIncludingTax": 484,
            },
            {"lineType": "Comment", "quantity": 0, "netAmountIncludingTax": 0},
            {
                "lineType": "Item",
                "quantity": 3,
                "shippedQuantity": 0,
                "invoicedQuantity": 0,
                "netAmountIncludingTax": 100,
            },
        ]
    }


def test_every_field_is_derived_from_the_customer_its_financial_details_orders_and_unposted_invoices() -> None:
    activity = CustomerActivity(
        CUSTOMER, FINANCIAL, orders=(_order(),), unposted_invoices=({"totalAmountIncludingTax": 60.5},)
    )
    values = account_statistics(activity, as_of=date(2026, 1, 31), lcy_currency_id="EUR-ID")
    assert values == {
        "nav_name": "Adatum Corporation",
        "nav_customerno": "C00010",
        "nav_balancelcy": 1210.5,
        "nav_outstandingorderslcy": 221.0,  # 484 x 1/4 + 100
        "nav_shippednotinvoicedlcy": 242.0,  # 484 x 2/4
        "nav_outstandinginvoiceslcy": 60.5,
        "nav_outstandingserviceorderslcy": 0.0,
        "nav_servshippednotinvoicedlcy": 0.0,
        "nav_outstandingservinvoiceslcy": 0.0,
        "nav_totallcy": 1734.0,  # 1210.5 + 221 + 242 + 60.5
        "nav_creditlimitlcy": 5000.0,
        "nav_overdueamountslcy": 300.25,
        "nav_overdueamountsasof": "2026-01-31T00:00:00Z",
        "nav_totalsaleslcy": 2000.0,
        "nav_invoicedprepaymentamountlcy": 0.0,
        "transactioncurrencyid": "eur-id",
    }


def test_a_customer_without_financial_details_or_documents_has_zeros() -> None:
    values = account_statistics(CustomerActivity(CUSTOMER, None), as_of=date(2026, 1, 31), lcy_currency_id=None)
    assert values["nav_balancelcy"] == values["nav_totallcy"] == 0.0
    assert "transactioncurrencyid" not in values


def test_only_changed_columns_are_written_and_an_unchanged_row_writes_nothing() -> None:
    desired = account_statistics(CustomerActivity(CUSTOMER, FINANCIAL), as_of=date(2026, 1, 31), lcy_currency_id="X")
    assert statistics_changes(None, desired) == desired
    stored = {**desired, "nav_balancelcy": "1210.50", "nav_overdueamountsasof": "2026-01-31T00:00:00Z",
              "transactioncurrencyid": "X".lower()}  # fmt: skip
    assert statistics_changes(stored, desired) == {}
    assert statistics_changes({**stored, "nav_balancelcy": 10}, desired) == {"nav_balancelcy": 1210.5}
    assert statistics_changes({**stored, "nav_overdueamountsasof": "2026-01-30T00:00:00Z"}, desired) == {
        "nav_overdueamountsasof": "2026-01-31T00:00:00Z"
    }
