"""Permission sets, as far as the API shows them: table data an app may not read or change.

Every caller may do everything unless the back door withholds a permission
(``/_emulator/permissions`` ``{"withhold": ["customers:Read", "salesOrders:Insert"]}``), as a
missing permission set on the app's "Microsoft Entra Applications" card would. A request that
needs a withheld permission gets BC's 403 (code ``Internal_ServerError``, message "Sorry, the
current permissions prevented the action. (TableData <id> <name> <type>: Base Application)").
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ._errors import BcError

PERMISSION_TYPES = ("Read", "Insert", "Modify", "Delete")
_BY_METHOD: Mapping[str, str] = {"GET": "Read", "POST": "Insert", "PATCH": "Modify", "DELETE": "Delete"}

# API page → the table behind it (id, name), for the message.
TABLE_DATA: Mapping[str, tuple[int, str]] = {
    "customers": (18, "Customer"),
    "contacts": (5050, "Contact"),
    "contactsInformation": (5054, "Contact Business Relation"),
    "salespeoplePurchasers": (13, "Salesperson/Purchaser"),
    "currencies": (4, "Currency"),
    "unitsOfMeasure": (204, "Unit of Measure"),
    "items": (27, "Item"),
    "paymentTerms": (3, "Payment Terms"),
    "shipmentMethods": (10, "Shipment Method"),
    "salesOrders": (36, "Sales Header"),
    "salesOrderLines": (37, "Sales Line"),
    "salesQuotes": (36, "Sales Header"),
    "salesQuoteLines": (37, "Sales Line"),
    "salesInvoices": (112, "Sales Invoice Header"),
    "salesInvoiceLines": (113, "Sales Invoice Line"),
    "salesShipments": (110, "Sales Shipment Header"),
    "salesShipmentLines": (111, "Sales Shipment Line"),
    "customerPaymentJournals": (232, "Gen. Journal Batch"),
    "customerPayments": (81, "Gen. Journal Line"),
    "customerFinancialDetails": (18, "Customer"),
}


class Permissions:
    """Withheld ``<entity set>:<type>`` permissions; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._withheld: set[tuple[str, str]] = set()

    def configure(self, withhold: list[str]) -> dict[str, Any]:
        """Withhold exactly these (``[]`` gives everything back)."""
        parsed = set()
        for item in withhold:
            entity_set, _, kind = item.partition(":")
            if kind not in PERMISSION_TYPES:
                raise ValueError(f"{item!r}: the type must be one of {', '.join(PERMISSION_TYPES)}")
            parsed.add((entity_set, kind))
        with self._lock:
            self._withheld = parsed
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"withheld": sorted(f"{s}:{k}" for s, k in self._withheld)}

    def require(self, entity_set: str, method: str) -> None:
        """Raise BC's 403 when the permission ``method`` needs on ``entity_set`` is withheld."""
        kind = _BY_METHOD.get(method, "Read")
        with self._lock:
            withheld = (entity_set, kind) in self._withheld
        if withheld:
            table_id, name = TABLE_DATA.get(entity_set, (0, entity_set))
            raise BcError(
                403,
                "Internal_ServerError",
                f"Sorry, the current permissions prevented the action. (TableData {table_id} {name} {kind}: "
                "Base Application)",
            )
