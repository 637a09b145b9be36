"""Sales orders and quotes from Dataverse into BC documents: the pure conversion plan.

A Dataverse ``salesorder`` (or ``quote``) with its detail lines, plus what the use-case looked up
(the BC customer, currency, items and units coupled to them, the write-in item and the freight
account from the settings), becomes a BC ``salesOrder`` / ``salesQuote`` header and its lines,
by the rules of behaviour reference §4.3-4.5 and §5.2 as far as BC API v2.0 can express them
(``docs/orders-and-quotes.md`` lists each gap). Every failed precondition raises a
``PermanentError`` (or ``ConfigurationError`` for a setting) whose message names the record and
the fix; the use-case stores it and retries the document once the cause is fixed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from shared.errors import ConfigurationError, PermanentError

__all__ = [
    "DESCRIPTION_LENGTH",
    "EXTERNAL_DOCUMENT_NUMBER_LENGTH",
    "LINE_STEP",
    "MAPPING_SALES_ORDER",
    "MAPPING_SALES_QUOTE",
    "DocumentKind",
    "DocumentPlan",
    "DocumentRequest",
    "ProductInfo",
    "Resolved",
    "UnitInfo",
    "comment_chunks",
    "creation_marker",
    "parse_document_message",
    "plan_document",
]

# Coupling mapping names (Couplings table): bcId = the BC document's id, dataverseId = the row's id.
MAPPING_SALES_ORDER: Final = "SALESORDER-ORDER"
MAPPING_SALES_QUOTE: Final = "SALESQUOTE-QUOTE"

DESCRIPTION_LENGTH: Final = 100  # MaxStrLen of Sales Line.Description (50 in old NAV)
EXTERNAL_DOCUMENT_NUMBER_LENGTH: Final = 35
LINE_STEP: Final = 10_000  # BC's Line No. step; our lines carry it as ``sequence``

# Dataverse product.producttypecode
SALES_INVENTORY: Final = 1
SERVICES: Final = 3
_PRODUCT_TYPES: Final = {1: "Sales Inventory", 2: "Miscellaneous Charges", 3: "Services", 4: "Flat Fees"}
_CENT = Decimal("0.01")

# Dataverse bill-to / ship-to column part → BC address field part, with BC's lengths (APIV2 pages).
_ADDRESS_PARTS: Final = (
    ("line1", "AddressLine1", 100),
    ("line2", "AddressLine2", 50),
    ("city", "City", 30),
    ("country", "Country", 10),
    ("stateorprovince", "State", 30),
    ("postalcode", "PostCode", 20),
)


class DocumentKind(enum.StrEnum):
    """Which Dataverse document is converted."""

    ORDER = "order"
    QUOTE = "quote"

    @property
    def entity(self) -> str:
        """The Dataverse table's logical name."""
        return "salesorder" if self is DocumentKind.ORDER else "quote"

    @property
    def caption(self) -> str:
        """How messages name it."""
        return "sales order" if self is DocumentKind.ORDER else "quote"

    @property
    def number_attribute(self) -> str:
        """The Dataverse auto-number column."""
        return "ordernumber" if self is DocumentKind.ORDER else "quotenumber"

    @property
    def bc_entity_set(self) -> str:
        """The BC header entity set."""
        return "salesOrders" if self is DocumentKind.ORDER else "salesQuotes"

    @property
    def bc_line_set(self) -> str:
        """The BC line entity set."""
        return "salesOrderLines" if self is DocumentKind.ORDER else "salesQuoteLines"


@dataclass(frozen=True)
class ProductInfo:
    """A Dataverse product a line names, with the BC item coupled to it (ITEM-PRODUCT), if any."""

    product_id: str
    name: str
    type_code: int | None
    state_code: int | None
    item_id: str | None = None


@dataclass(frozen=True)
class UnitInfo:
    """A Dataverse unit (``uom``): its name, whether it is its group's base unit, and the BC unit
    coupled to its group (UNIT OF MEASURE couples BC units to Dataverse unit groups)."""

    uom_id: str
    name: str
    is_base: bool
    group_name: str
    bc_unit_code: str | None = None


@dataclass(frozen=True)
class Resolved:
    """What the use-case looked up for one document; the plan needs nothing else."""

    customer_id: str  # the BC customer
    currency_id: str | None = None  # BC currency id; the blank GUID for the local currency
    products: Mapping[str, ProductInfo] = field(default_factory=dict)
    units: Mapping[str, UnitInfo] = field(default_factory=dict)
    payment_terms_id: str | None = None
    shipment_method_id: str | None = None
    write_in_item: str | None = None  # WRITE_IN_PRODUCT_NO
    freight_account: str | None = None  # FREIGHT_GL_ACCOUNT_NO


@dataclass(frozen=True)
class DocumentPlan:
    """The BC document to create: header fields, lines in order, and the invoice discount.

    ``header`` goes with the create; ``final_header`` is written once the lines exist (the
    invoice discount can only be set on a document that has lines, and the external document
    number replaces the creation marker then).
    """

    header: Mapping[str, Any]
    lines: tuple[Mapping[str, Any], ...]
    final_header: Mapping[str, Any]


def creation_marker(kind: DocumentKind, dataverse_id: str) -> str:
    """A value for BC's External Document No. that only this Dataverse row's conversion writes.

    BC API v2.0 lets a client choose no key and no reference field on a sales document except
    ``externalDocumentNumber`` (35 characters), and a lost create response leaves no id to go by.
    So the document is created with this marker there, found again by it after a lost answer,
    and the marker is replaced by the Sales name once the id is in the ledger.
    """
    prefix = "D365SO-" if kind is DocumentKind.ORDER else "D365SQ-"
    digest = hashlib.sha256(dataverse_id.lower().encode("ascii", "replace")).hexdigest()
    return (prefix + digest)[:EXTERNAL_DOCUMENT_NUMBER_LENGTH]


def comment_chunks(text: str, first_length: int = DESCRIPTION_LENGTH) -> tuple[str, list[str]]:
    """Split a line text into the line's description and the Comment lines that continue it.

    The first ``first_length`` characters of the first text line are the description; the rest of
    that text line and every further text line continue in chunks of at most 100 characters.
    Empty text lines are kept out (BC would show them as blank comment lines).
    """
    text_lines = [t.rstrip() for t in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text_lines = [t for t in text_lines if t.strip()]
    if not text_lines:
        return "", []
    first = text_lines[0]
    description, rest = first[:first_length], first[first_length:]
    chunks: list[str] = []
    for piece in ([rest] if rest else []) + text_lines[1:]:
        chunks.extend(piece[i : i + DESCRIPTION_LENGTH] for i in range(0, len(piece), DESCRIPTION_LENGTH))
    return description, [c for c in chunks if c.strip()]


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(_CENT, rounding=ROUND_HALF_UP)


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _date(value: Any) -> str | None:
    if not value:
        return None
    return str(value)[:10]


def _name(kind: DocumentKind, header: Mapping[str, Any]) -> str:
    number = header.get(kind.number_attribute) or header.get(f"{kind.entity}id", "?")
    return f"{kind.caption} {number}"


def _text_field(kind: DocumentKind, header: Mapping[str, Any], column: str, bc_field: str, limit: int) -> str:
    value = str(header.get(column) or "")
    if len(value) > limit:
        raise PermanentError(
            f"The {_name(kind, header)} cannot be converted: {column} '{value}' has {len(value)} characters and "
            f"BC's {bc_field} takes at most {limit}. Shorten it in Dynamics 365 Sales.",
            code="TextTooLong",
        )
    return value


def _address(kind: DocumentKind, header: Mapping[str, Any], side: str, prefix: str) -> dict[str, str]:
    # The built-in copies an address only if at least one of its columns is filled; otherwise
    # BC keeps the customer's address. The name is not copied (reference §4.3).
    if not any(header.get(f"{side}_{part}") for part, _, _ in _ADDRESS_PARTS):
        return {}
    return {
        f"{prefix}{bc_part}": _text_field(kind, header, f"{side}_{part}", f"{prefix}{bc_part}", limit)
        for part, bc_part, limit in _ADDRESS_PARTS
    }


def _line_order(line: Mapping[str, Any]) -> tuple[int, int]:
    return int(line.get("sequencenumber") or 0), int(line.get("lineitemnumber") or 0)


def _line_name(kind: DocumentKind, header: Mapping[str, Any], position: int) -> str:
    return f"line {position} of {_name(kind, header)}"


def _product_line(
    kind: DocumentKind, header: Mapping[str, Any], line: Mapping[str, Any], position: int, resolved: Resolved
) -> dict[str, Any]:
    where = _line_name(kind, header, position)
    product_id = str(line["productid"]).lower()
    product = resolved.products.get(product_id)
    if product is None:
        raise PermanentError(
            f"The product {product_id} on {where} does not exist in Dynamics 365 Sales.", code="ProductNotFound"
        )
    if product.state_code not in (0, None):
        raise PermanentError(
            f"The product '{product.name}' on {where} is not active. Publish (activate) it in Dynamics 365 Sales.",
            code="ProductNotActive",
        )
    if product.type_code == SERVICES:
        raise PermanentError(
            f"The product '{product.name}' on {where} is a Services product, which the built-in integration "
            "turns into a BC resource line; BC API v2.0 has no resources (no RESOURCE-PRODUCT coupling, no "
            "Resource document lines). Use a Sales Inventory product coupled to a BC item (e.g. a Service-type "
            "item) instead.",
            code="ResourceProductUnavailable",
        )
    if product.type_code not in (SALES_INVENTORY, None):
        label = _PRODUCT_TYPES.get(product.type_code, str(product.type_code))
        raise PermanentError(
            f"Unexpected value of product type code for product '{product.name}' on {where}: {label}. "
            "The supported value is Sales Inventory.",
            code="UnsupportedProductType",
        )
    if product.item_id is None:
        raise PermanentError(
            f"The Dynamics 365 Sales product '{product.name}' on {where} is not coupled to an item. "
            "Couple it (ITEM-PRODUCT) or run a synchronization of ITEM-PRODUCT.",
            code="ProductNotCoupled",
        )
    planned: dict[str, Any] = {"lineType": "Item", "itemId": product.item_id}
    uom_id = line.get("uomid")
    if uom_id:
        unit = resolved.units.get(str(uom_id).lower())
        if unit is None or unit.bc_unit_code is None:
            group = f" (unit group '{unit.group_name}')" if unit else ""
            raise PermanentError(
                f"The unit '{unit.name if unit else uom_id}'{group} on {where} is not coupled to a unit of measure. "
                "Couple its unit group (UNIT OF MEASURE).",
                code="UnitNotCoupled",
            )
        if not unit.is_base:
            raise PermanentError(
                f"The unit '{unit.name}' on {where} is not the base unit of its unit group '{unit.group_name}'; "
                "BC API v2.0 exposes no item units of measure to convert it. Use the group's base unit "
                f"'{unit.bc_unit_code}'.",
                code="UnitNotCoupled",
            )
        planned["unitOfMeasureCode"] = unit.bc_unit_code
    return planned


def _write_in_line(kind: DocumentKind, header: Mapping[str, Any], position: int, resolved: Resolved) -> dict[str, Any]:
    if not resolved.write_in_item:
        raise ConfigurationError(
            f"{_line_name(kind, header, position).capitalize()} contains a write-in product. Choose the default "
            "write-in product: set WRITE_IN_PRODUCT_NO to the number of a BC item that is not coupled.",
            code="WriteInProductNotConfigured",
        )
    return {"lineType": "Item", "lineObjectNumber": resolved.write_in_item}


def _lines(
    kind: DocumentKind, header: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], resolved: Resolved
) -> tuple[list[dict[str, Any]], Decimal]:
    planned: list[dict[str, Any]] = []
    sequence = 0
    line_total = Decimal(0)
    for position, line in enumerate(sorted(lines, key=_line_order), start=1):
        if line.get("productid"):
            bc_line = _product_line(kind, header, line, position, resolved)
        else:
            bc_line = _write_in_line(kind, header, position, resolved)
        quantity = Decimal(str(line.get("quantity") or 0))
        price = _money(line.get("priceperunit"))
        # Line Discount Amount = quantity x volume discount + manual discount (reference §4.4).
        discount = _money(
            quantity * _money(line.get("volumediscountamount")) + _money(line.get("manualdiscountamount"))
        )
        bc_line.update(quantity=_number(quantity), unitPrice=_number(price))
        if discount:
            bc_line["discountAmount"] = _number(discount)
        line_total += _money(quantity * price) - discount
        text = str(line.get("description") or line.get("productdescription") or "")
        description, comments = comment_chunks(text)
        if description:
            bc_line["description"] = description
        sequence += LINE_STEP
        bc_line["sequence"] = sequence
        planned.append(bc_line)
        for chunk in comments:
            # BC's "Attached to Line No." is not in API v2.0: the comment lines follow their line.
            sequence += LINE_STEP
            planned.append({"lineType": "Comment", "description": chunk, "sequence": sequence})
    return planned, line_total


def plan_document(
    kind: DocumentKind,
    header: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    resolved: Resolved,
) -> DocumentPlan:
    """The BC document for a Dataverse order or quote and its lines.

    Raises:
        PermanentError: a line's product is missing, not active, of an unsupported type or not
            coupled; a unit is not coupled; a text is too long for its BC field.
        ConfigurationError: a write-in line with no write-in item configured.
    """
    dataverse_id = str(header[f"{kind.entity}id"])
    bc_header: dict[str, Any] = {
        "customerId": resolved.customer_id,
        "externalDocumentNumber": creation_marker(kind, dataverse_id),
    }
    if resolved.currency_id is not None:
        bc_header["currencyId"] = resolved.currency_id
    if resolved.payment_terms_id:
        bc_header["paymentTermsId"] = resolved.payment_terms_id
    if resolved.shipment_method_id:
        bc_header["shipmentMethodId"] = resolved.shipment_method_id
    requested = _date(header.get("requestdeliveryby"))
    if requested and kind is DocumentKind.ORDER:
        bc_header["requestedDeliveryDate"] = requested
    if kind is DocumentKind.QUOTE:
        valid_until = _date(header.get("effectiveto"))
        if valid_until:
            bc_header["validUntilDate"] = valid_until
    bc_header.update(_address(kind, header, "billto", "billTo"))
    bc_header.update(_address(kind, header, "shipto", "shipTo"))

    bc_lines, line_total = _lines(kind, header, lines, resolved)
    freight = _money(header.get("freightamount"))
    if freight and resolved.freight_account:
        bc_lines.append(
            {
                "lineType": "Account",
                "lineObjectNumber": resolved.freight_account,
                "description": "Freight",
                "quantity": 1,
                "unitPrice": _number(freight),
                "sequence": (len(bc_lines) + 1) * LINE_STEP,
            }
        )
    final: dict[str, Any] = {
        "externalDocumentNumber": str(header.get("name") or "")[:EXTERNAL_DOCUMENT_NUMBER_LENGTH],
    }
    if _money(header.get("discountamount")) or Decimal(str(header.get("discountpercentage") or 0)):
        # The order discount becomes BC's invoice discount: line total less the total before freight.
        total = header.get("totallineitemamount")
        less_freight = header.get("totalamountlessfreight")
        base = _money(total) if total is not None else line_total
        discount = base - _money(less_freight) if less_freight is not None else Decimal(0)
        if discount > 0:
            final["discountAmount"] = _number(discount)
    return DocumentPlan(header=bc_header, lines=tuple(bc_lines), final_header=final)


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class DocumentRequest:
    """One message of the ``sales-orders`` / ``quotes`` queue: convert this document.

    ``source`` is ``push`` (a Dataverse service-endpoint event), ``poll`` or ``manual``;
    ``initiator`` is who made the change a push event reports (the echo rule skips our own).
    """

    dataverse_id: str
    source: str
    message: str = ""
    initiator: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The body the connector itself sends."""
        return {"dataverseId": self.dataverse_id, "source": self.source}


def parse_document_message(body: bytes, kind: DocumentKind) -> DocumentRequest:
    """Our own ``{"dataverseId", "source"}`` message, or a Dataverse RemoteExecutionContext.

    Raises:
        PermanentError: ``MalformedMessage`` naming what is wrong.
    """
    from shared.domain.notifications import parse_remote_execution_context

    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        raise PermanentError(f"malformed {kind.caption} message: not JSON", code="MalformedMessage") from None
    if isinstance(document, dict) and "MessageName" in document:
        event = parse_remote_execution_context(body)
        if event.entity != kind.entity:
            raise PermanentError(
                f"malformed {kind.caption} message: a {event.entity} event on the {kind.caption}s queue "
                "(check the Dataverse step's service endpoint)",
                code="MalformedMessage",
            )
        return DocumentRequest(event.record_id, "push", event.message, event.initiator)
    if not isinstance(document, dict):
        raise PermanentError(f"malformed {kind.caption} message: not a JSON object", code="MalformedMessage")
    dataverse_id = document.get("dataverseId")
    if not isinstance(dataverse_id, str) or not _GUID.match(dataverse_id):
        raise PermanentError(
            f"malformed {kind.caption} message: dataverseId is missing or not a GUID", code="MalformedMessage"
        )
    source = document.get("source")
    return DocumentRequest(dataverse_id.lower(), source if isinstance(source, str) and source else "manual")
