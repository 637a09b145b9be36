"""Table privileges: which of a user's ``prv<Action><SchemaName>`` privileges are withheld.

Every user has every privilege unless the back door withholds some (``/_emulator/privileges``),
the way an administrator's security role would. A request that needs a withheld privilege gets
403 ``0x80040220`` naming it, as the service does; ``RetrieveUserPrivilegeByPrivilegeName``
answers with no role privileges for it. Child tables (order lines, units of a group) are
governed by their parent table's privileges, as in the service.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from . import _errors as err

PRIVILEGE_DENIED = "0x80040220"
_NAMESPACE = uuid.UUID("0f4e3a52-6a8e-4bfa-9d1e-9b3f2c1d0e77")

# SchemaName of the tables whose privileges are named after them (what EntityDefinitions shows).
SCHEMA_NAMES: Mapping[str, str] = {
    "account": "Account",
    "contact": "Contact",
    "systemuser": "SystemUser",
    "transactioncurrency": "TransactionCurrency",
    "uomschedule": "UoMSchedule",
    "uom": "UoM",
    "product": "Product",
    "pricelevel": "PriceLevel",
    "productpricelevel": "ProductPriceLevel",
    "salesorder": "SalesOrder",
    "salesorderdetail": "SalesOrderDetail",
    "quote": "Quote",
    "quotedetail": "QuoteDetail",
    "invoice": "Invoice",
    "invoicedetail": "InvoiceDetail",
    "post": "Post",
    "opportunity": "Opportunity",
    "organization": "Organization",
    "serviceendpoint": "ServiceEndpoint",
    "sdkmessage": "SdkMessage",
    "sdkmessagefilter": "SdkMessageFilter",
    "sdkmessageprocessingstep": "SdkMessageProcessingStep",
}
# Lines and price list items have no privileges of their own: their parent's apply.
GOVERNED_BY: Mapping[str, str] = {
    "salesorderdetail": "salesorder",
    "quotedetail": "quote",
    "invoicedetail": "invoice",
    "uom": "uomschedule",
    "productpricelevel": "pricelevel",
}
ACTIONS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share")


def schema_name(logical_name: str) -> str:
    """The table's SchemaName (custom tables keep their logical name)."""
    return SCHEMA_NAMES.get(logical_name, logical_name)


def privilege_name(action: str, logical_name: str) -> str:
    """``prvReadAccount`` for reading accounts; a child table answers with its parent's."""
    return f"prv{action}{schema_name(GOVERNED_BY.get(logical_name, logical_name))}"


class Privileges:
    """The withheld privileges per user id; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._withheld: dict[str, set[str]] = {}

    def configure(self, user_id: str, withhold: list[str]) -> dict[str, Any]:
        """Withhold exactly ``withhold`` from ``user_id`` (an empty list gives everything back)."""
        with self._lock:
            self._withheld[user_id.lower()] = {p.lower() for p in withhold}
        return self.as_dict()

    def reset(self) -> None:
        with self._lock:
            self._withheld.clear()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {user: sorted(names) for user, names in self._withheld.items() if names}

    def holds(self, user_id: str, name: str) -> bool:
        with self._lock:
            return name.lower() not in self._withheld.get(user_id.lower(), set())

    def require(self, user_id: str, action: str, logical_name: str, object_type_code: int) -> None:
        """Raise the service's 403 when ``user_id`` lacks the privilege for ``action`` on the table."""
        name = privilege_name(action, logical_name)
        if self.holds(user_id, name):
            return
        privilege_id = uuid.uuid5(_NAMESPACE, name.lower())
        raise err.DataverseError(
            403,
            PRIVILEGE_DENIED,
            f"Principal user (Id={user_id}, type=8, roleCount=1, privilegeCount=0, accessMode=4), is missing "
            f"{name} privilege (Id={privilege_id}) on OTC={object_type_code} for entity '{logical_name}'. "
            f"context.Caller={user_id}",
        )

    def role_privileges(self, user_id: str, name: str, business_unit_id: str) -> list[dict[str, Any]]:
        """What ``RetrieveUserPrivilegeByPrivilegeName`` lists: one global-depth entry, or none."""
        if not self.holds(user_id, name):
            return []
        return [
            {
                "Depth": "Global",
                "PrivilegeId": str(uuid.uuid5(_NAMESPACE, name.lower())),
                "BusinessUnitId": business_unit_id,
                "PrivilegeName": name,
            }
        ]
