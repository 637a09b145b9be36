"""Posted sales invoices BC → Sales and their payment status, as pure plans (behaviour reference §6.1, §6.2).

A posted BC ``salesInvoice`` (status Open, Paid, Canceled or Corrective) with its lines becomes one
Dataverse ``invoice`` with its ``invoicedetail`` rows. Everything the plan needs from other
records (the coupled account, currency, salesperson, products, the Sales order it came from) is
resolved by the use-case in bulk and handed in as an :class:`InvoiceContext`.

Row ids are derived from the BC ids (UUID v5), so the same posted invoice always becomes the same
Dataverse row: a create repeated after a crash meets the row it made the first time instead of
making a second one, and a lost coupling is found again by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.errors import PermanentError

__all__ = [
    "ACTIVE_BILLED",
    "CANCELED",
    "PAID_COMPLETE",
    "PAID_PARTIAL",
    "PAYMENT_STATUS_JOB",
    "POSTED_INVOICE_MAPPING",
    "SALES_ORDER_MAPPING",
    "InvoiceContext",
    "InvoicePlan",
    "InvoiceState",
    "ProductRef",
    "SalesOrderRef",
    "invoice_line_row_id",
    "invoice_row_id",
    "is_posted",
    "payment_state",
    "plan_invoice",
    "state_steps",
]

POSTED_INVOICE_MAPPING = "POSTEDSALESINV-INV"
PAYMENT_STATUS_JOB = "INVOICE PAYMENT STATUS"  # the job log's name for payment status runs
SALES_ORDER_MAPPING = "SALESORDER-ORDER"  # coupled by the Sales order conversion (bcId = BC salesOrder id)
LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"
BLANK_GUID = "00000000-0000-0000-0000-000000000000"
BLANK_DATE = "0001-01-01"
POSTED_STATUSES = frozenset({"Open", "Paid", "Canceled", "Corrective"})
_CENT = Decimal("0.01")
# Fixed namespace of the derived row ids: changing it would make every posted invoice new again.
_ROW_NAMESPACE = uuid.UUID("5c0f7f4e-2f55-4b83-9d0e-6a5b3c1f9e21")
ROUNDING_DESCRIPTION = "Rounding"


@dataclass(frozen=True, order=True)
class InvoiceState:
    """A Dataverse invoice's statecode/statuscode pair (Appendix A)."""

    statecode: int
    statuscode: int

    def values(self) -> dict[str, int]:
        """The pair as the columns to write."""
        return {"statecode": self.statecode, "statuscode": self.statuscode}


ACTIVE_BILLED = InvoiceState(0, 4)
PAID_COMPLETE = InvoiceState(2, 100001)
PAID_PARTIAL = InvoiceState(2, 100002)
CANCELED = InvoiceState(3, 100003)
ACTIVE = 0


def money(value: Any) -> Decimal:
    """An amount as BC and Dataverse keep it: a decimal rounded to cents."""
    return Decimal(str(value or 0)).quantize(_CENT, rounding=ROUND_HALF_UP)


def is_posted(invoice: Mapping[str, Any]) -> bool:
    """A ``salesInvoices`` record that is a posted invoice (not a Draft or one In Review)."""
    return str(invoice.get("status", "")) in POSTED_STATUSES


def invoice_row_id(company_id: str, bc_invoice_id: str) -> str:
    """The Dataverse ``invoiceid`` of a posted BC invoice: the same every time it is asked."""
    return str(uuid.uuid5(_ROW_NAMESPACE, f"invoice/{company_id.lower()}/{bc_invoice_id.lower()}"))


def invoice_line_row_id(invoice_id: str, bc_line_id: str) -> str:
    """The Dataverse ``invoicedetailid`` of one posted invoice line (``bc_line_id`` "rounding" for that line)."""
    return str(uuid.uuid5(_ROW_NAMESPACE, f"invoicedetail/{invoice_id.lower()}/{bc_line_id.lower()}"))


# -- payment status ----------------------------------------------------------------------------------
def payment_state(invoice: Mapping[str, Any]) -> InvoiceState:
    """What the Dataverse invoice's state should be, from the posted invoice's remaining amount (§6.2).

    Canceled and corrected (Corrective) invoices are Canceled; nothing remaining is Paid/Complete;
    less remaining than the original amount is Paid/Partial; otherwise Active/Billed.
    """
    if str(invoice.get("status")) in ("Canceled", "Corrective"):
        return CANCELED
    remaining = money(invoice.get("remainingAmount"))
    if remaining == 0:
        return PAID_COMPLETE
    if remaining != money(invoice.get("totalAmountIncludingTax")):
        return PAID_PARTIAL
    return ACTIVE_BILLED


def state_steps(current: InvoiceState, target: InvoiceState) -> list[InvoiceState]:
    """The state writes that take an invoice from ``current`` to ``target``, in order.

    Dataverse changes only Active invoices, so one that is Paid or Canceled is first re-activated
    (Active/Billed), as the built-in does, and then set to its new state.
    """
    if current == target:
        return []
    if current.statecode != ACTIVE and target != ACTIVE_BILLED:
        return [ACTIVE_BILLED, target]
    return [target]


# -- creating the invoice ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductRef:
    """The Dataverse product coupled to a BC item, with the unit its lines use."""

    product_id: str
    uom_id: str | None


@dataclass(frozen=True)
class SalesOrderRef:
    """The Dataverse Sales order a posted invoice came from (through its SALESORDER-ORDER coupling)."""

    salesorder_id: str
    name: str | None = None
    account_id: str | None = None  # the order's customer when it is an account
    price_level_id: str | None = None
    opportunity_id: str | None = None
    owner_id: str | None = None


@dataclass(frozen=True)
class InvoiceContext:
    """What a posted invoice refers to, resolved through couplings.

    Attributes:
        account_id: the account coupled to the invoice's (sell-to) customer, ``None`` if uncoupled.
        currency_id: the transactioncurrency coupled to the invoice currency (LCY: the base currency).
        price_level_id: the price list to use when the invoice did not come from a Sales order.
        owner_id: the systemuser coupled to the invoice's salesperson.
        payment_terms: the ``paymenttermscode`` option coupled to the invoice's payment terms.
        order: the Sales order the invoice came from, if it came from a coupled one.
        products: BC item id → coupled product; items not in here become write-in lines.
    """

    account_id: str | None
    currency_id: str | None
    price_level_id: str | None = None
    owner_id: str | None = None
    payment_terms: int | None = None
    order: SalesOrderRef | None = None
    products: Mapping[str, ProductRef] = field(default_factory=dict)


@dataclass(frozen=True)
class InvoicePlan:
    """The rows to create for one posted invoice: the header, then its lines."""

    invoice_id: str
    header: dict[str, Any]
    lines: tuple[dict[str, Any], ...]


def _date(value: Any) -> str | None:
    # BC's blank date is 0001-01-01; Dataverse date-times want a time part.
    text = str(value or "")
    if not text or text.startswith(BLANK_DATE):
        return None
    return text if "T" in text else f"{text}T00:00:00Z"


def _guid(value: Any) -> str | None:
    text = str(value or "").lower()
    return None if not text or text == BLANK_GUID else text


def _number(value: Decimal) -> float:
    return float(value)


_ADDRESS_PARTS = (
    ("AddressLine1", "line1", 250),
    ("AddressLine2", "line2", 250),
    ("City", "city", 80),
    ("PostCode", "postalcode", 20),
    ("Country", "country", 80),
    ("State", "stateorprovince", 50),
)


def _addresses(invoice: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "billto_name": str(invoice.get("billToName") or "")[:200] or None,
        "shipto_name": str(invoice.get("shipToName") or "")[:200] or None,
    }
    for bc_side, dv_side in (("billTo", "billto"), ("shipTo", "shipto")):
        for bc_part, dv_part, length in _ADDRESS_PARTS:
            values[f"{dv_side}_{dv_part}"] = str(invoice.get(f"{bc_side}{bc_part}") or "")[:length] or None
    return values


def plan_invoice(
    company_id: str, invoice: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], context: InvoiceContext
) -> InvoicePlan:
    """The Dataverse invoice and lines for one posted BC invoice (§6.1), status Active/Billed.

    Raises:
        PermanentError: the invoice is not posted (``NotPosted``), its customer is not coupled
            (``CustomerNotCoupled``), or the Sales order it came from has another customer
            (``OrderCustomerChanged``).
    """
    number = str(invoice.get("number") or "")
    if not is_posted(invoice):
        raise PermanentError(
            f"Sales invoice {number} is not posted (status {invoice.get('status')}); "
            "only posted invoices are created in Dynamics 365 Sales.",
            code="NotPosted",
        )
    if context.account_id is None:
        raise PermanentError(
            f"Cannot create the invoice {number} in Dynamics 365 Sales: customer {invoice.get('customerNumber')} "
            "is not coupled to an account.",
            code="CustomerNotCoupled",
        )
    order = context.order
    if order is not None and order.account_id != context.account_id:
        raise PermanentError(
            f"Cannot create the invoice in Dynamics 365 Sales. The customer from the original Dynamics 365 Sales "
            f"sales order {invoice.get('orderNumber')} was changed or is no longer coupled.",
            code="OrderCustomerChanged",
        )
    invoice_id = invoice_row_id(company_id, str(invoice["id"]))
    owner = (order.owner_id if order is not None else None) or context.owner_id
    header: dict[str, Any] = {
        "invoiceid": invoice_id,
        "name": ((order.name if order is not None else None) or number)[:300],
        "invoicenumber": number,
        "customerid": context.account_id,
        f"customerid@{LOOKUP_TABLE}": "account",
        "transactioncurrencyid": context.currency_id,
        "pricelevelid": order.price_level_id if order is not None else context.price_level_id,
        "duedate": _date(invoice.get("dueDate")),
        "datedelivered": _date(max((str(line.get("shipmentDate") or "") for line in lines), default="")),
        "discountamount": _number(money(invoice.get("discountAmount"))),
        **_addresses(invoice),
        **ACTIVE_BILLED.values(),
    }
    if owner is not None:
        header.update({"ownerid": owner, f"ownerid@{LOOKUP_TABLE}": "systemuser"})
    if order is not None:
        header["salesorderid"] = order.salesorder_id
        if order.opportunity_id:
            header["opportunityid"] = order.opportunity_id
    if context.payment_terms is not None:
        header["paymenttermscode"] = context.payment_terms
    header = {k: v for k, v in header.items() if v is not None}
    planned = _plan_lines(invoice, lines, context, invoice_id)
    return InvoicePlan(invoice_id, header, tuple(planned))


def _plan_lines(
    invoice: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], context: InvoiceContext, invoice_id: str
) -> list[dict[str, Any]]:
    prices_include_tax = bool(invoice.get("pricesIncludeTax"))
    planned: list[dict[str, Any]] = []
    expected_total = -money(invoice.get("discountAmount"))  # what Dataverse will roll up the lines to
    last_number = 0
    for line in sorted(lines, key=lambda r: int(r.get("sequence") or 0)):
        last_number = max(last_number, int(line.get("sequence") or 0))
        if line.get("lineType") == "Comment":
            continue  # text only: nothing to invoice, and Sales has no text lines
        quantity = Decimal(str(line.get("quantity") or 0))
        discount = money(line.get("discountAmount"))
        tax = money(line.get("netTaxAmount"))  # Amount Incl. VAT - Amount, after the invoice discount
        price = money(line.get("unitPrice"))
        if prices_include_tax and quantity:
            price -= money(tax / quantity)
        row: dict[str, Any] = {
            "invoicedetailid": invoice_line_row_id(invoice_id, str(line["id"])),
            "invoiceid": invoice_id,
            "lineitemnumber": int(line.get("sequence") or 0),
            "quantity": float(quantity),
            "priceperunit": _number(price),
            "ispriceoverridden": True,
            "manualdiscountamount": _number(discount),
            "tax": _number(tax),
        }
        if context.currency_id:
            row["transactioncurrencyid"] = context.currency_id
        product = (
            context.products.get(str(line.get("itemId") or "").lower()) if line.get("lineType") == "Item" else None
        )
        if product is not None:
            row.update({"isproductoverridden": False, "productid": product.product_id})
            if product.uom_id:
                row["uomid"] = product.uom_id
        else:
            text = f"{line.get('lineObjectNumber') or ''} {line.get('description') or ''}".strip()
            row.update({"isproductoverridden": True, "productdescription": (text or "Write-in")[:500]})
        planned.append(row)
        expected_total += money(price * quantity) - discount + tax
    difference = money(invoice.get("totalAmountIncludingTax")) - expected_total
    if prices_include_tax and difference:
        planned.append(
            {
                "invoicedetailid": invoice_line_row_id(invoice_id, "rounding"),
                "invoiceid": invoice_id,
                "lineitemnumber": last_number + 10000,
                "quantity": 1.0,
                "priceperunit": _number(difference),
                "ispriceoverridden": True,
                "manualdiscountamount": 0.0,
                "tax": 0.0,
                "isproductoverridden": True,
                "productdescription": ROUNDING_DESCRIPTION,
                **({"transactioncurrencyid": context.currency_id} if context.currency_id else {}),
            }
        )
    return planned
