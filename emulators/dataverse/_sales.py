"""Sales business rules: state/status pairs, editability, line pricing and header totals.

Rules (wire-protocols §A.8, §B.2, E.1 items 17-19):

* a statecode/statuscode pair must belong together; a statecode alone gets its default status;
* orders are editable only while Active, quotes only while Draft, invoices only while Active;
  lines follow their header; ``post`` rows are create-only;
* Won/Closed quotes and Fulfilled/Canceled orders are reached through the close actions
  (``WinQuote``, ``CloseQuote``, ``FulfillSalesOrder``, ``CancelSalesOrder``), not by PATCH;
* a line is either a catalogue product (Active, priced from the header's price list unless
  ``ispriceoverridden``) or a write-in (``isproductoverridden``: a description and no product);
* baseamount = priceperunit * quantity; extendedamount = baseamount - discounts + tax; header
  totals are rolled up from the lines on every line write.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import _errors as err
from ._entities import BY_LOGICAL_NAME
from ._model import EntityDefinition
from ._store import Row, Store

LINE_PARENT: Mapping[str, tuple[str, str]] = {
    "salesorderdetail": ("salesorder", "salesorderid"),
    "quotedetail": ("quote", "quoteid"),
    "invoicedetail": ("invoice", "invoiceid"),
}
HEADER_LINES: Mapping[str, tuple[str, str]] = {parent: (line, attr) for line, (parent, attr) in LINE_PARENT.items()}

# statecodes in which a header's own columns (and its lines) may change
EDITABLE_STATES: Mapping[str, frozenset[int]] = {
    "salesorder": frozenset({0}),
    "quote": frozenset({0}),
    "invoice": frozenset({0}),
}
# statecodes that only a close action may set
ACTION_ONLY_STATES: Mapping[str, frozenset[int]] = {
    "salesorder": frozenset({2, 3}),
    "quote": frozenset({2, 3}),
}
# statecodes a record can never leave by PATCH
FINAL_STATES: Mapping[str, frozenset[int]] = {
    "quote": frozenset({2, 3}),
    "salesorder": frozenset({2}),
}
STATE_NAMES: Mapping[str, str] = {
    "salesorder": "SalesOrderState",
    "quote": "QuoteState",
    "invoice": "InvoiceState",
    "product": "ProductState",
}

_CENT = Decimal("0.01")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def as_float(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def generate_number(store: Store, definition: EntityDefinition) -> str:
    # Shape of the service's auto-numbers, e.g. ORD-01001-G5Q4P9: prefix, sequence, random tail.
    tail = "".join(random.choices(string.ascii_uppercase + string.digits, k=6))  # noqa: S311 - not a secret
    return f"{definition.number_prefix}-{store.next_number(definition.logical_name):05d}-{tail}"


def resolve_state(definition: EntityDefinition, current: Row | None, changes: dict[str, Any], record_id: str) -> None:
    """Validate and complete a statecode/statuscode change in ``changes`` (in place)."""
    if not definition.states or ("statecode" not in changes and "statuscode" not in changes):
        return
    logical = definition.logical_name
    state_code = changes.get("statecode", current.get("statecode") if current else None)
    if state_code is None and definition.initial_state is not None:
        state_code = definition.initial_state[0]
    state = definition.state(int(state_code)) if state_code is not None else None
    if state is None:
        raise err.out_of_range("statecode", logical, state_code, ",".join(str(s.code) for s in definition.states))
    if "statuscode" not in changes or changes["statuscode"] is None:
        changes["statuscode"] = state.default_status
    status = int(changes["statuscode"])
    if status not in state.statuses:
        prefix = STATE_NAMES.get(logical, f"{logical.capitalize()}State")
        raise err.bad_request(
            f"{status} is not a valid status code for state code {prefix}.{state.label.replace(' ', '')} "
            f"on {logical} with Id {record_id}."
        )
    changes["statecode"] = state.code


def check_update_allowed(definition: EntityDefinition, current: Row, changes: dict[str, Any]) -> None:
    """Reject changes a record's current state does not allow."""
    logical = definition.logical_name
    state_change = "statecode" in changes and changes["statecode"] != current.get("statecode")
    if state_change:
        target = int(changes["statecode"])
        if target in ACTION_ONLY_STATES.get(logical, frozenset()):
            action = {"salesorder": "FulfillSalesOrder or CancelSalesOrder", "quote": "WinQuote or CloseQuote"}
            raise err.bad_request(
                f"The statecode {target} of {logical} can only be set with the {action[logical]} message."
            )
        if int(current.get("statecode", 0)) in FINAL_STATES.get(logical, frozenset()):
            raise err.DataverseError(
                400, err.READ_ONLY, f"The {logical} is closed and its state can no longer be changed."
            )
    field_changes = {k for k in changes if k not in ("statecode", "statuscode")}
    editable = EDITABLE_STATES.get(logical)
    if field_changes and editable is not None and int(current.get("statecode", 0)) not in editable:
        raise err.DataverseError(
            400, err.READ_ONLY, f"The {logical} cannot be updated because it is read-only in its current state."
        )


def check_parent_editable(store: Store, line_logical: str, line: Row) -> Row:
    parent_logical, attr = LINE_PARENT[line_logical]
    ref = line.get(attr)
    if not isinstance(ref, dict):
        raise err.bad_request(f"The {attr} of a {line_logical} is required.")
    parent = store.get(parent_logical, ref["id"])
    if parent is None:
        raise err.not_found(parent_logical, ref["id"])
    if int(parent.get("statecode", 0)) not in EDITABLE_STATES[parent_logical]:
        raise err.DataverseError(
            400,
            err.READ_ONLY,
            f"The {parent_logical} is read-only in its current state; its products cannot be changed.",
        )
    return parent


def price_line(store: Store, line_logical: str, line: Row, changes: dict[str, Any], creating: bool) -> None:
    """Validate a line and compute its amounts (``line`` is the merged row, changed in place)."""
    parent = check_parent_editable(store, line_logical, line)
    if creating and "isproductoverridden" not in changes:
        line["isproductoverridden"] = False
    write_in = bool(line.get("isproductoverridden"))
    product_ref = line.get("productid")
    if write_in:
        if product_ref:
            raise err.bad_request("A write-in product (isproductoverridden = true) cannot have a productid.")
        if not line.get("productdescription"):
            raise err.bad_request("A write-in product needs a productdescription.")
    else:
        if not isinstance(product_ref, dict):
            raise err.bad_request(
                "The productid of an existing product is required unless isproductoverridden is true."
            )
        product = store.get("product", product_ref["id"])
        if product is None:
            raise err.not_found("product", product_ref["id"])
        if product.get("statecode") != 0:
            raise err.bad_request(
                f"The product '{product.get('name')}' is not active; only Active products can be added.",
            )
        if not isinstance(line.get("uomid"), dict):
            raise err.bad_request("The uomid of a product line is required.")
        line["productidname"] = product.get("name")
        if not line.get("ispriceoverridden"):
            line["priceperunit"] = _list_price(store, parent, product_ref["id"], line["uomid"]["id"])
    if line.get("quantity") is None:
        line["quantity"] = 1.0
    if line.get("priceperunit") is None:
        line["priceperunit"] = 0.0
    base = money(line["priceperunit"]) * money(line["quantity"])
    discount = money(line.get("manualdiscountamount")) + money(line.get("volumediscountamount"))
    line["volumediscountamount"] = as_float(money(line.get("volumediscountamount")))
    line["baseamount"] = as_float(base)
    line["extendedamount"] = as_float(base - discount + money(line.get("tax")))
    if parent.get("transactioncurrencyid") and not line.get("transactioncurrencyid"):
        line["transactioncurrencyid"] = parent["transactioncurrencyid"]


def _list_price(store: Store, parent: Row, product_id: str, uom_id: str) -> float:
    price_level = parent.get("pricelevelid")
    if not isinstance(price_level, dict):
        raise err.bad_request("The price list is not set on the parent record; set pricelevelid or override the price.")
    for item in store.peek_rows("productpricelevel"):
        pl, prod, uom = item.get("pricelevelid"), item.get("productid"), item.get("uomid")
        if (
            isinstance(pl, dict)
            and pl["id"] == price_level["id"]
            and isinstance(prod, dict)
            and prod["id"] == product_id
            and isinstance(uom, dict)
            and uom["id"] == uom_id
        ):
            return float(item.get("amount") or 0)
    raise err.bad_request(
        "The product and unit are not on the price list of the parent record (no price list item found)."
    )


def roll_up(store: Store, header_logical: str, header: Row) -> None:
    """Recompute a header's totals from its lines (``header`` changed in place)."""
    line_logical, attr = HEADER_LINES[header_logical]
    header_id = header[BY_LOGICAL_NAME[header_logical].primary_id]
    lines = [
        row for row in store.peek_rows(line_logical) if isinstance(row.get(attr), dict) and row[attr]["id"] == header_id
    ]
    detail = sum(
        (
            money(r.get("baseamount")) - money(r.get("manualdiscountamount")) - money(r.get("volumediscountamount"))
            for r in lines
        ),
        Decimal(0),
    )
    line_discount = sum((money(r.get("manualdiscountamount")) for r in lines), Decimal(0))
    tax = sum((money(r.get("tax")) for r in lines), Decimal(0))
    order_discount = money(header.get("discountamount")) + detail * money(header.get("discountpercentage")) / 100
    less_freight = detail - order_discount
    header["totallineitemamount"] = as_float(detail)
    header["totallineitemdiscountamount"] = as_float(line_discount)
    header["totaldiscountamount"] = as_float(order_discount)
    header["totalamountlessfreight"] = as_float(less_freight)
    header["totaltax"] = as_float(tax)
    header["totalamount"] = as_float(less_freight + money(header.get("freightamount")) + tax)
