"""Between the wire and the store: key segments, request bodies, and the JSON rows clients read.

Pure functions over the metadata; lookups of other rows go through a ``Resolver`` callback so
this module never touches the store.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from . import _errors as err
from ._entities import BY_ENTITY_SET, BY_LOGICAL_NAME
from ._model import LOOKUP_TYPES, Attribute, AttrType, EntityDefinition
from ._store import Row

GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KEY_PART_RE = re.compile(r"\s*([A-Za-z_][\w]*)\s*=\s*('(?:[^']|'')*'|[^,]+?)\s*(?:,|$)")

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAV = "Microsoft.Dynamics.CRM.associatednavigationproperty"


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def etag_of(row: Row) -> str:
    return f'W/"{row["versionnumber"]}"'


# -- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A parsed ``(…)`` segment: a primary id, or alternate-key attribute values."""

    id: str | None = None
    values: Mapping[str, Any] | None = None


def parse_key(definition: EntityDefinition, text: str) -> Key:
    """Parse the inside of ``set(...)``.

    Raises:
        DataverseError: 400 "The key in the request URI is not valid" for anything else.
    """
    text = text.strip()
    if GUID_RE.fullmatch(text):
        return Key(id=text.lower())
    if "=" not in text or not definition.addressable_by_key:
        raise err.invalid_key(definition.logical_name)
    values: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        match = _KEY_PART_RE.match(text, pos)
        if match is None:
            raise err.invalid_key(definition.logical_name)
        name, raw = match.group(1), match.group(2).strip()
        if raw.startswith("'"):
            value: Any = raw[1:-1].replace("''", "'")
        elif GUID_RE.fullmatch(raw):
            value = raw.lower()
        elif re.fullmatch(r"-?\d+", raw):
            value = int(raw)
        elif re.fullmatch(r"-?\d+\.\d+", raw):
            value = float(raw)
        else:
            raise err.invalid_key(definition.logical_name)
        values[name] = value
        pos = match.end()
    primary = values.get(definition.primary_id) if len(values) == 1 else None
    if isinstance(primary, str) and GUID_RE.fullmatch(primary):
        return Key(id=primary)
    declared = {frozenset(key) for key in definition.alternate_keys}
    normalized = {_key_attribute(name): value for name, value in values.items()}
    if frozenset(normalized) not in declared:
        raise err.invalid_key(definition.logical_name)
    return Key(values=normalized)


def _key_attribute(name: str) -> str:
    # A lookup column in a key is written as _x_value; the key declaration names the attribute.
    return name[1:-6] if name.startswith("_") and name.endswith("_value") else name


_REF_RE = re.compile(r"^(?:.*?/api/data/v9\.\d/|/)?([A-Za-z_]\w*)\((.+)\)$")


@dataclass(frozen=True)
class Reference:
    definition: EntityDefinition
    key: Key


def parse_reference(text: str) -> Reference | None:
    """``/accounts(<id>)``, ``accounts(accountnumber='A1')`` or an absolute URL → reference."""
    match = _REF_RE.match(text.strip())
    if match is None:
        return None
    definition = BY_ENTITY_SET.get(match.group(1))
    if definition is None:
        return None
    return Reference(definition, parse_key(definition, match.group(2)))


# -- request bodies ---------------------------------------------------------------------------

# Resolves a reference to the id of an existing row, or raises; a content id resolver is layered on
# top of it inside a batch change set.
Resolver = Callable[[str, EntityDefinition, str], str]


@dataclass
class ParsedBody:
    values: dict[str, Any]
    deep: dict[str, list[dict[str, Any]]]


def _coerce(definition: EntityDefinition, attribute: Attribute, value: Any) -> Any:
    name, logical = attribute.name, definition.logical_name
    if value is None:
        return None
    kind = attribute.type
    if kind in (AttrType.STRING, AttrType.MEMO, AttrType.ENTITYNAME):
        if not isinstance(value, str):
            raise err.payload_error(logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.String'.")
        if attribute.max_length is not None and len(value) > attribute.max_length:
            raise err.too_long(name, logical, attribute.max_length)
        return value
    if kind in (AttrType.INTEGER, AttrType.BIGINT, AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS):
        if isinstance(value, bool) or not isinstance(value, int):
            raise err.payload_error(logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.Int32'.")
        if attribute.options and kind == AttrType.PICKLIST and value not in attribute.options:
            raise err.out_of_range(name, logical, value, ",".join(str(o) for o in attribute.options))
        _check_range(definition, attribute, value)
        return value
    if kind in (AttrType.DECIMAL, AttrType.MONEY):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise err.payload_error(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'."
            )
        try:
            number = float(Decimal(str(value)))
        except ArithmeticError as exc:
            raise err.payload_error(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'."
            ) from exc
        if kind == AttrType.MONEY and not -922337203685477 <= number <= 922337203685477:
            raise err.out_of_range(name, logical, value, "-922337203685477 to 922337203685477")
        _check_range(definition, attribute, number)
        return number
    if kind == AttrType.BOOLEAN:
        if not isinstance(value, bool):
            raise err.payload_error(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'."
            )
        return value
    if kind == AttrType.DATETIME:
        if not isinstance(value, str):
            raise err.payload_error(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
            )
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise err.payload_error(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == AttrType.UNIQUEIDENTIFIER:
        if not isinstance(value, str) or not GUID_RE.fullmatch(value):
            raise err.payload_error(logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.Guid'.")
        return value.lower()
    raise NotImplementedError(f"attribute type {kind} of {logical}.{name}")


def _check_range(definition: EntityDefinition, attribute: Attribute, value: float) -> None:
    lo, hi = attribute.min_value, attribute.max_value
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise err.out_of_range(attribute.name, definition.logical_name, value, f"{lo} to {hi}")


def parse_body(definition: EntityDefinition, body: Any, *, creating: bool, resolve: Resolver) -> ParsedBody:
    """Validate a create/update body and turn it into stored values.

    Columns not valid for the operation (server-set, insert-only on update) are dropped silently, as
    the service does; everything else malformed raises the service's 400.
    """
    logical = definition.logical_name
    if not isinstance(body, dict):
        raise err.payload_error(logical, "A JSON object was expected as the request body.")
    values: dict[str, Any] = {}
    deep: dict[str, list[dict[str, Any]]] = {}
    for name, value in body.items():
        if name.endswith("@odata.bind"):
            nav = name[: -len("@odata.bind")]
            found = definition.navigation(nav)
            if found is None:
                raise DataverseErrorFactory.undeclared_bind(nav, logical)
            attribute, target = found
            if not (attribute.create if creating else attribute.update):
                continue
            if value is None:
                values[attribute.name] = None
                continue
            if not isinstance(value, str):
                raise err.payload_error(logical, f"The value of '{name}' must be a URL string.")
            target_definition = BY_LOGICAL_NAME.get(target)
            if target_definition is None:  # pragma: no cover - definitions are closed
                raise err.bad_request(f"Unknown target entity '{target}'.")
            record_id = resolve(value, target_definition, nav)
            values[attribute.name] = {"id": record_id, "entity": target}
            continue
        if "@" in name:
            continue  # instance annotations on input carry no data
        found_attribute = definition.attributes.get(name)
        if found_attribute is None:
            if name.startswith("_") and name.endswith("_value") and definition.attributes.get(name[1:-6]):
                raise err.DataverseError(
                    400,
                    err.PAYLOAD,
                    "CRM do not support direct update of Entity Reference properties, Use Navigation "
                    "properties instead.",
                )
            nav = definition.collection(name)
            if nav is not None and creating and isinstance(value, list):
                deep[name] = [dict(item) for item in value if isinstance(item, dict)]
                continue
            if definition.navigation(name) is not None:
                raise NotImplementedError(f"deep insert of single-valued navigation property {name}")
            raise err.undeclared_property(name, logical)
        attribute = found_attribute
        if attribute.type in LOOKUP_TYPES:
            raise err.payload_error(
                logical,
                f"A 'PrimitiveValue' node with non-null value was found when trying to read the value of the "
                f"navigation property '{name}'; however, a 'StartArray' node, a 'StartObject' node, or a "
                "'PrimitiveValue' node with null value was expected.",
            )
        if not (attribute.create if creating else attribute.update):
            continue
        values[name] = _coerce(definition, attribute, value)
    return ParsedBody(values, deep)


class DataverseErrorFactory:
    @staticmethod
    def undeclared_bind(nav: str, logical: str) -> err.DataverseError:
        return err.DataverseError(
            400,
            err.QUERY_NOT_SUPPORTED,
            f"An undeclared property '{nav}' which only has property annotations in the payload but no "
            "property value was found in the payload. In OData, only declared navigation properties and "
            "declared named streams can be represented as properties without values.",
        )


# -- rows on the wire -------------------------------------------------------------------------


class AnnotationFilter:
    """``Prefer: odata.include-annotations="..."``: ``*``, exact names or ``Namespace.*`` patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip() for p in patterns if p.strip())

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def wants(self, annotation: str) -> bool:
        for pattern in self.patterns:
            if pattern in ("*", annotation):
                return True
            if pattern.endswith(".*") and annotation.startswith(pattern[:-1]):
                return True
        return False


def _format_number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _format_datetime(text: str) -> str:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    hour = parsed.hour % 12 or 12
    return f"{parsed.month}/{parsed.day}/{parsed.year} {hour}:{parsed.minute:02d} {'AM' if parsed.hour < 12 else 'PM'}"


NameOf = Callable[[str, str], str | None]
SymbolOf = Callable[[Row], str]


def to_wire(
    definition: EntityDefinition,
    row: Row,
    *,
    select: Iterable[str] = (),
    annotations: AnnotationFilter | None = None,
    name_of: NameOf | None = None,
    currency_symbol: SymbolOf | None = None,
    etag: bool = True,
) -> dict[str, Any]:
    """The JSON object the Web API returns for ``row``.

    Without ``select`` every column is returned (nulls included); lookups appear as ``_x_value``.
    ``annotations`` adds formatted values and lookup annotations; ``name_of`` gives a referenced
    row's primary name for lookup formatted values.
    """
    out: dict[str, Any] = {}
    if etag:
        out["@odata.etag"] = etag_of(row)
    wanted = list(select) if select else [a.value_name for a in definition.attributes.values()]
    if select and definition.primary_id not in wanted:
        wanted.append(definition.primary_id)  # the service always returns the primary key
    for value_name in wanted:
        attribute = definition.attribute_by_value_name(value_name)
        if attribute is None:
            continue
        value = row.get(attribute.name)
        if attribute.type in LOOKUP_TYPES:
            ref = value if isinstance(value, dict) else None
            out[value_name] = ref["id"] if ref else None
            if annotations and ref:
                if annotations.wants(FORMATTED) and name_of is not None:
                    out[f"{value_name}@{FORMATTED}"] = name_of(ref["entity"], ref["id"])
                if annotations.wants(ASSOCIATED_NAV):
                    out[f"{value_name}@{ASSOCIATED_NAV}"] = attribute.navigation_for(ref["entity"])
                if annotations.wants(LOOKUP_LOGICAL):
                    out[f"{value_name}@{LOOKUP_LOGICAL}"] = ref["entity"]
            continue
        out[value_name] = value
        if annotations and value is not None and annotations.wants(FORMATTED):
            formatted = _formatted(attribute, value, row, currency_symbol)
            if formatted is not None:
                out[f"{value_name}@{FORMATTED}"] = formatted
    return out


def _formatted(attribute: Attribute, value: Any, row: Row, currency_symbol: SymbolOf | None) -> str | None:
    if attribute.options:
        return attribute.options.get(int(value), str(value))
    if attribute.type == AttrType.BOOLEAN:
        return "Yes" if value else "No"
    if attribute.type == AttrType.MONEY:
        symbol = currency_symbol(row) if currency_symbol is not None else ""
        return f"{symbol}{_format_number(float(value), 2)}"
    if attribute.type == AttrType.DECIMAL:
        return _format_number(float(value), 2)
    if attribute.type in (AttrType.INTEGER, AttrType.BIGINT):
        return f"{int(value):,}"
    if attribute.type == AttrType.DATETIME:
        return _format_datetime(str(value))
    return None


def new_id() -> str:
    return str(uuid.uuid4())
