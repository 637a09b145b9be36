"""Account statistics (``nav_accountstatistics``, behaviour reference §6.3) from what BC API v2.0 exposes. Pure.

One row per coupled customer, every amount in LCY. How each field is derived, and which ones the
API cannot supply, is in ``docs/invoices-and-statistics.md``; in short:

- ``customers``: name, number, credit limit;
- ``customerFinancialDetails``: balance, sales, overdue amount;
- open ``salesOrders`` with their lines: outstanding orders and shipped-not-invoiced amounts
  (amount including tax x outstanding or shipped-not-invoiced quantity / quantity, per line);
- ``salesInvoices`` that are not posted yet (Draft, In Review): outstanding invoices;
- service documents and prepayments are not in the API: those fields are 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "STATISTICS_ENTITY_SET",
    "STATISTICS_JOB",
    "CustomerActivity",
    "account_statistics",
    "statistics_changes",
]

STATISTICS_JOB = "CUSTOMER STATISTICS"  # the job log's name for statistics runs
STATISTICS_ENTITY_SET = "nav_accountstatisticses"
ACCOUNT_LINK = "nav_accountstatisticsid"
UNPOSTED_INVOICE_STATUSES = ("Draft", "In Review")
_CENT = Decimal("0.01")

MONEY_FIELDS = (
    "nav_balancelcy",
    "nav_outstandingorderslcy",
    "nav_shippednotinvoicedlcy",
    "nav_outstandinginvoiceslcy",
    "nav_outstandingserviceorderslcy",
    "nav_servshippednotinvoicedlcy",
    "nav_outstandingservinvoiceslcy",
    "nav_totallcy",
    "nav_creditlimitlcy",
    "nav_overdueamountslcy",
    "nav_totalsaleslcy",
    "nav_invoicedprepaymentamountlcy",
)
TEXT_FIELDS = ("nav_name", "nav_customerno")
# What a statistics row is read with to compare (the lookup by its logical name, as the port reads it).
STATISTICS_COLUMNS = (*TEXT_FIELDS, *MONEY_FIELDS, "nav_overdueamountsasof", "transactioncurrencyid")


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(_CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CustomerActivity:
    """One customer's BC figures, as read in bulk for a statistics run.

    Attributes:
        customer: the ``customers`` record (``number``, ``displayName``, ``creditLimit``).
        financial: its ``customerFinancialDetails`` record (``balance``, ``totalSalesExcludingTax``,
            ``overdueAmount``); ``None`` reads as zeros.
        orders: its ``salesOrders``, each with ``salesOrderLines`` expanded.
        unposted_invoices: its ``salesInvoices`` in Draft or In Review.
    """

    customer: Mapping[str, Any]
    financial: Mapping[str, Any] | None
    orders: tuple[Mapping[str, Any], ...] = ()
    unposted_invoices: tuple[Mapping[str, Any], ...] = ()


def _order_amounts(orders: Iterable[Mapping[str, Any]]) -> tuple[Decimal, Decimal]:
    """Outstanding and shipped-not-invoiced amounts including tax (BC's Sales Line fields)."""
    outstanding = shipped_not_invoiced = Decimal(0)
    for order in orders:
        for line in order.get("salesOrderLines") or ():
            quantity = Decimal(str(line.get("quantity") or 0))
            if line.get("lineType") == "Comment" or not quantity:
                continue
            amount = Decimal(str(line.get("netAmountIncludingTax") or 0))
            shipped = Decimal(str(line.get("shippedQuantity") or 0))
            invoiced = Decimal(str(line.get("invoicedQuantity") or 0))
            outstanding += _money(amount * (quantity - shipped) / quantity)
            shipped_not_invoiced += _money(amount * (shipped - invoiced) / quantity)
    return outstanding, shipped_not_invoiced


def account_statistics(activity: CustomerActivity, *, as_of: date, lcy_currency_id: str | None) -> dict[str, Any]:
    """The ``nav_accountstatistics`` columns for one customer (amounts as floats of cents)."""
    customer, financial = activity.customer, activity.financial or {}
    balance = _money(financial.get("balance"))
    outstanding_orders, shipped_not_invoiced = _order_amounts(activity.orders)
    outstanding_invoices = sum(
        (_money(invoice.get("totalAmountIncludingTax")) for invoice in activity.unposted_invoices), Decimal(0)
    )
    # Service management and prepayments are not in BC API v2.0: those amounts are 0 (see the docs).
    service_orders = service_shipped = service_invoices = prepayments = Decimal(0)
    total = (
        balance
        + outstanding_orders
        + shipped_not_invoiced
        + outstanding_invoices
        + service_orders
        + service_shipped
        + service_invoices
        - prepayments
    )
    values: dict[str, Any] = {
        "nav_name": str(customer.get("displayName") or "")[:160],
        "nav_customerno": str(customer.get("number") or "")[:20],
        "nav_balancelcy": balance,
        "nav_outstandingorderslcy": outstanding_orders,
        "nav_shippednotinvoicedlcy": shipped_not_invoiced,
        "nav_outstandinginvoiceslcy": outstanding_invoices,
        "nav_outstandingserviceorderslcy": service_orders,
        "nav_servshippednotinvoicedlcy": service_shipped,
        "nav_outstandingservinvoiceslcy": service_invoices,
        "nav_totallcy": total,
        "nav_creditlimitlcy": _money(customer.get("creditLimit")),
        "nav_overdueamountslcy": _money(financial.get("overdueAmount")),
        "nav_overdueamountsasof": f"{as_of.isoformat()}T00:00:00Z",
        "nav_totalsaleslcy": _money(financial.get("totalSalesExcludingTax")),
        "nav_invoicedprepaymentamountlcy": prepayments,
    }
    for name in MONEY_FIELDS:
        values[name] = float(values[name])
    if lcy_currency_id:
        values["transactioncurrencyid"] = lcy_currency_id.lower()
    return values


def statistics_changes(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of ``desired`` that differ from the stored row (all of them when there is none).

    Money is compared to the cent and the as-of date by its day, so a re-read of unchanged figures
    writes nothing ("Unchanged" in the job's counters).
    """
    if current is None:
        return dict(desired)
    changes: dict[str, Any] = {}
    for name, value in desired.items():
        stored = current.get(name)
        if name in MONEY_FIELDS:
            same = stored is not None and _money(stored) == _money(value)
        elif name == "nav_overdueamountsasof":
            same = str(stored or "")[:10] == str(value)[:10]
        elif name == "transactioncurrencyid":
            same = str(stored or "").lower() == str(value or "").lower()
        else:
            same = (stored or "") == (value or "")
        if not same:
            changes[name] = value
    return changes
