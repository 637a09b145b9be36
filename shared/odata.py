"""OData literals and filters built safely: every value entering a ``$filter`` or a key goes through here.

A quote in a customer name must not end a string literal early and turn data into query
syntax; a "GUID" that is not one must not reach a key segment.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from shared.errors import PermanentError

__all__ = ["any_of", "guid_literal", "key_segment", "literal", "string_literal"]

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def string_literal(value: str) -> str:
    """``'…'`` with single quotes doubled, as OData requires."""
    return "'" + value.replace("'", "''") + "'"


def guid_literal(value: str) -> str:
    """A GUID as an unquoted OData literal.

    Raises:
        PermanentError: ``value`` is not a GUID (code ``InvalidGuid``).
    """
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise PermanentError(f"{value!r} is not a valid GUID", code="InvalidGuid") from None


def literal(value: object) -> str:
    """Any supported Python value as an OData literal (strings quoted and escaped)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        return string_literal(value)
    raise TypeError(f"no OData literal for {type(value).__name__}")


def field_name(name: str) -> str:
    """A property path, checked: names come from mappings, never from users, but verify anyway."""
    if not _SAFE_NAME.match(name):
        raise PermanentError(f"{name!r} is not a valid OData property name", code="InvalidPropertyName")
    return name


def key_segment(value: str) -> str:
    """The ``(…)`` key of an entity URL: a GUID bare, anything else as an escaped string."""
    try:
        return f"({uuid.UUID(value)})"
    except ValueError:
        return f"({string_literal(value)})"


def any_of(name: str, values: Iterable[object]) -> str:
    """``name eq v1 or name eq v2 …`` for a chunk of values (callers chunk to the API's limits)."""
    clauses = [f"{field_name(name)} eq {literal(v)}" for v in values]
    if not clauses:
        raise ValueError("any_of needs at least one value")
    return "(" + " or ".join(clauses) + ")"


def window_params(
    filter: str | None,
    modified_field: str,
    since: datetime | None,
    until: datetime | None,
    *,
    order: str,
    also: Iterable[str] = (),
) -> dict[str, str]:
    """Query options of a read of changed records: ``filter`` and-ed with ``since < modified_field
    <= until`` and any further clauses, in ``order``."""
    clauses = [f"({filter})"] if filter else []
    if since is not None:
        clauses.append(f"{modified_field} gt {literal(since)}")
    if until is not None:
        clauses.append(f"{modified_field} le {literal(until)}")
    clauses.extend(also)
    params = {"$orderby": order}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    return params
