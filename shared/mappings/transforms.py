"""Named pure value transforms used by field mappings: ``(value, direction) -> value``.

A field mapping names one of these in ``FieldMapping.transform``; the engine
(``shared.domain.record_sync``) applies it to the source value in the direction of travel,
*before* any lookup through couplings. A transform whose field flows one way only still answers
the other direction (it passes the value through), so flipping a field's direction by
configuration never breaks the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from shared.domain.record_sync import EMPTY_GUID, LookupTable
from shared.domain.state import SyncDirection

__all__ = [
    "LCY_LOOKUP_KEY",
    "TRANSFORMS",
    "UOM_SCHEDULE_PREFIX",
    "Transform",
    "first_name",
    "item_blocked_product_state",
    "item_blocked_product_status",
    "last_name",
    "lcy_currency",
    "non_negative",
    "option_code",
    "price_list_state",
    "salesperson_code",
    "uom_schedule_name",
    "with_base_currency",
]

Transform = Callable[[Any, SyncDirection], Any]

# BC leaves the currency blank (``currencyId`` = empty GUID) for the local currency (LCY); Dataverse
# always names a currency row. The transform turns "blank" into this key, and the use-case puts
# the base currency under it in ``LookupTable.to_dataverse["CURRENCY"]`` (and the base currency's
# id → EMPTY_GUID in ``to_bc["CURRENCY"]``), so LCY travels through the ordinary CURRENCY lookup.
LCY_LOOKUP_KEY = "(LCY)"

# The built-in names the unit group of a BC unit of measure "NAV <code>" (behaviour reference §1.4).
UOM_SCHEDULE_PREFIX = "NAV "

_BC_CODE_LENGTH = 10  # Payment Terms / Shipment Method / Shipping Agent codes are Code[10]
_SALESPERSON_CODE_PREFIX = "SP "

# Product states (wire-protocols §B.1): 0 Active/1 Active, 1 Retired/2 Retired.
_PRODUCT_ACTIVE, _PRODUCT_RETIRED = 0, 1
_PRODUCT_STATUS_ACTIVE, _PRODUCT_STATUS_RETIRED = 1, 2


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in {"", EMPTY_GUID})


def with_base_currency(lookups: LookupTable, base_currency_id: str, *, mapping: str = "CURRENCY") -> LookupTable:
    """``lookups`` plus LCY ↔ Dataverse's base currency under the CURRENCY mapping.

    The use-case calls this once per page with the organisation's base currency
    (``organizations``' ``basecurrencyid``): BC blank (LCY) then resolves to it, and it resolves
    back to the empty GUID, BC's blank currency.
    """
    to_dataverse = {k: dict(v) for k, v in lookups.to_dataverse.items()}
    to_bc = {k: dict(v) for k, v in lookups.to_bc.items()}
    to_dataverse.setdefault(mapping, {})[LCY_LOOKUP_KEY] = base_currency_id.lower()
    to_bc.setdefault(mapping, {})[base_currency_id.lower()] = EMPTY_GUID
    return LookupTable(to_dataverse=to_dataverse, to_bc=to_bc)


def non_negative(value: Any, direction: SyncDirection) -> Any:
    """Towards Dataverse a negative number becomes 0 (inventory, capacity, price); else unchanged.

    Dataverse rejects a negative ``quantityonhand`` and the built-in writes 0 rather than fail.
    """
    if direction is not SyncDirection.TO_DATAVERSE or value is None or isinstance(value, bool):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value
    return 0 if number < 0 else value


def lcy_currency(value: Any, direction: SyncDirection) -> Any:
    """Towards Dataverse a blank BC currency (LCY) becomes :data:`LCY_LOOKUP_KEY`; else unchanged."""
    if direction is SyncDirection.TO_DATAVERSE and _is_blank(value):
        return LCY_LOOKUP_KEY
    return value


def item_blocked_product_state(value: Any, direction: SyncDirection) -> Any:
    """BC ``blocked`` ↔ product ``statecode``: blocked is Retired; a product not Active is blocked."""
    if direction is SyncDirection.TO_DATAVERSE:
        return _PRODUCT_RETIRED if value is True else _PRODUCT_ACTIVE
    if value is None:
        return None
    return int(value) != _PRODUCT_ACTIVE


def item_blocked_product_status(value: Any, direction: SyncDirection) -> Any:
    """BC ``blocked`` → product ``statuscode`` (paired with the state; Dataverse needs both)."""
    if direction is SyncDirection.TO_DATAVERSE:
        return _PRODUCT_STATUS_RETIRED if value is True else _PRODUCT_STATUS_ACTIVE
    return value


def uom_schedule_name(value: Any, direction: SyncDirection) -> Any:
    """BC unit code ``PCS`` ↔ unit group name ``NAV PCS``."""
    if value is None:
        return None
    text = str(value)
    if direction is SyncDirection.TO_DATAVERSE:
        return text if text.startswith(UOM_SCHEDULE_PREFIX) else UOM_SCHEDULE_PREFIX + text
    return text.removeprefix(UOM_SCHEDULE_PREFIX)


def option_code(value: Any, direction: SyncDirection) -> Any:
    """Option label ↔ BC code: a label coming to BC becomes a valid Code[10] (upper case, trimmed).

    Towards Dataverse the code is the label as is: a BC code with no option is appended to the
    option set under its own code, as the built-in does.
    """
    if direction is SyncDirection.TO_DATAVERSE or value is None:
        return value
    return str(value).strip().upper()[:_BC_CODE_LENGTH].rstrip()


def price_list_state(value: Any, direction: SyncDirection) -> Any:
    """BC price list ``status`` → ``pricelevel.statecode``: Active is 0, anything else Inactive (1)."""
    if direction is SyncDirection.TO_DATAVERSE:
        return 0 if value == "Active" else 1
    return value


def salesperson_code(value: Any, direction: SyncDirection) -> Any:
    """A systemuser id → a stable BC salesperson code ``SP 1A2B3C4D`` (≤ 20 characters).

    The built-in numbers new salespeople from a series ("SP NO. 00001"); a pure transform cannot
    count, so the code is derived from the user's id instead: stable, unique in practice, and
    recognisable.
    """
    if direction is SyncDirection.TO_DATAVERSE or _is_blank(value):
        return value
    return _SALESPERSON_CODE_PREFIX + str(value).replace("-", "")[:8].upper()


def _split_name(value: Any) -> tuple[str, str]:
    words = str(value or "").split()
    if not words:
        return "", ""
    return " ".join(words[:-1]), words[-1]


def first_name(value: Any, direction: SyncDirection) -> Any:
    """BC contact ``displayName`` → Dataverse ``firstname``: every word but the last."""
    return _split_name(value)[0] if direction is SyncDirection.TO_DATAVERSE else value


def last_name(value: Any, direction: SyncDirection) -> Any:
    """BC contact ``displayName`` → Dataverse ``lastname``: the last word (Dataverse requires one)."""
    return _split_name(value)[1] if direction is SyncDirection.TO_DATAVERSE else value


TRANSFORMS: Mapping[str, Transform] = MappingProxyType(
    {
        "non_negative": non_negative,
        "lcy_currency": lcy_currency,
        "item_blocked_product_state": item_blocked_product_state,
        "item_blocked_product_status": item_blocked_product_status,
        "uom_schedule_name": uom_schedule_name,
        "option_code": option_code,
        "price_list_state": price_list_state,
        "salesperson_code": salesperson_code,
        "first_name": first_name,
        "last_name": last_name,
    }
)
