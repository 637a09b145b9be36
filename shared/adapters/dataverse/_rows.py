"""Rows between the port's shape (logical names, lookups as GUIDs) and the Web API's shape. Pure.

On the wire a lookup is read as ``_x_value`` (with the target table in the
``@Microsoft.Dynamics.CRM.lookuplogicalname`` annotation) and written as
``<navigation>@odata.bind: "/<set>(<guid>)"``. Rows given to the port use the attribute's
logical name for both, and may name the target of a polymorphic lookup with
``x@Microsoft.Dynamics.CRM.lookuplogicalname``, exactly as a row read from the port carries it,
so a row read can be written back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.adapters.dataverse._metadata import TableMetadata
from shared.odata import field_name, guid_literal

__all__ = ["LOOKUP_LOGICAL_NAME", "from_wire", "to_wire", "wire_select"]

LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
_BIND = "odata.bind"


def from_wire(table: TableMetadata, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as read from the API, with ``_x_value`` (and its annotations) renamed to ``x``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name, at, annotation = key.partition("@")
        lookup = table.lookup_of_value_name(name)
        out[(lookup.attribute if lookup else name) + at + annotation] = value
    return out


def wire_select(table: TableMetadata, names: Sequence[str]) -> str:
    """The ``$select`` for logical names: lookups become ``_x_value``; the primary key is always read.

    Raises:
        PermanentError: a name is not a valid property name (``InvalidPropertyName``).
    """
    selected = dict.fromkeys([table.primary_key, *names])
    return ",".join(f"_{n}_value" if n in table.lookups else field_name(n) for n in selected)


def to_wire(table: TableMetadata, values: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """A create or update body: lookups become binds, read-only annotations are dropped.

    A lookup set to ``None`` is left out of a create and cleared on an update by binding its
    navigation property to null (Microsoft Learn, "Associate and disassociate table rows").

    Raises:
        PermanentError: a lookup value is not a GUID (``InvalidGuid``), names a table it cannot
            point at, or is polymorphic without naming its target.
    """
    body: dict[str, Any] = {}
    for key, value in values.items():
        name, _, annotation = key.partition("@")
        if annotation:
            if annotation == _BIND:
                body[key] = value  # already in wire form
            continue  # etags, formatted values, lookup targets: read-only, not data
        lookup = table.lookups.get(name) or table.lookup_of_value_name(name)
        if lookup is None:
            body[name] = value
            continue
        named = values.get(f"{lookup.attribute}@{LOOKUP_LOGICAL_NAME}") or values.get(
            f"_{lookup.attribute}_value@{LOOKUP_LOGICAL_NAME}"
        )
        if value is None:
            if not creating:
                # Any of a polymorphic lookup's navigation properties clears the one column.
                target = lookup.target(named) if named else lookup.targets[0]
                body[f"{target.navigation}@{_BIND}"] = None
            continue
        target = lookup.target(named)
        body[f"{target.navigation}@{_BIND}"] = f"/{target.entity_set}({guid_literal(str(value))})"
    return body
