"""System query options other than ``$filter``: parsing, projection, ordering.

``parse_query`` is the entry point: it takes the raw query parameters and the set of options the
calling API supports, and returns a :class:`QueryOptions`. An option the API does not support
raises ``ODataQueryError(kind="unsupported", option=...)`` rather than being ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._errors import ODataQueryError
from ._filter import Expr, parse_filter

KNOWN_OPTIONS: frozenset[str] = frozenset(
    {
        "$filter", "$select", "$orderby", "$top", "$skip", "$count", "$expand",
        "$skiptoken", "$deltatoken", "$search", "$apply", "$format", "$levels", "$compute", "$index",
    }
)  # fmt: skip

_IDENT_RE = re.compile(r"[A-Za-z_][\w.]*(?:/[A-Za-z_][\w.]*)*")


@dataclass(frozen=True)
class OrderItem:
    property: str
    descending: bool = False


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` entry: the navigation property and its nested options."""

    navigation: str
    options: QueryOptions


@dataclass(frozen=True)
class QueryOptions:
    """The parsed system query options of one request (or of one ``$expand`` entry)."""

    filter: Expr | None = None
    filter_text: str | None = None
    select: tuple[str, ...] = ()
    orderby: tuple[OrderItem, ...] = ()
    top: int | None = None
    skip: int | None = None
    count: bool = False
    expand: tuple[ExpandItem, ...] = ()
    skiptoken: str | None = None
    deltatoken: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside parentheses and quoted strings."""
    parts: list[str] = []
    depth = 0
    in_string = False
    current: list[str] = []
    for char in text:
        if char == "'":
            in_string = not in_string  # '' toggles twice, which keeps the state right
        elif not in_string:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise ODataQueryError(f"Unbalanced ')' in '{text}'.")
            elif char == separator and depth == 0:
                parts.append("".join(current))
                current = []
                continue
        current.append(char)
    if depth != 0 or in_string:
        raise ODataQueryError(f"Unbalanced parentheses or quotes in '{text}'.")
    parts.append("".join(current))
    return parts


def parse_select(text: str) -> tuple[str, ...]:
    """``$select=a,b,c`` → ``("a", "b", "c")``."""
    names = tuple(part.strip() for part in split_top_level(text, ","))
    for name in names:
        if name == "*":
            raise ODataQueryError(
                "'$select=*' is not supported; name the columns.", kind="unsupported", option="$select"
            )
        if not _IDENT_RE.fullmatch(name) or "/" in name:
            raise ODataQueryError(f"'{name}' is not a valid $select item.", option="$select")
    return names


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    """``$orderby=name asc,createdon desc`` → order items."""
    items: list[OrderItem] = []
    for part in split_top_level(text, ","):
        words = part.split()
        if not words or len(words) > 2 or not _IDENT_RE.fullmatch(words[0]):
            raise ODataQueryError(f"'{part.strip()}' is not a valid $orderby item.", option="$orderby")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataQueryError(f"'{words[1]}' is not asc or desc.", option="$orderby")
        items.append(OrderItem(words[0], direction == "desc"))
    return tuple(items)


def _parse_non_negative(name: str, text: str) -> int:
    if not re.fullmatch(r"\d+", text.strip()):
        raise ODataQueryError(
            f"The value '{text}' of {name} is not a non-negative integer.", kind="invalid_value", option=name
        )
    return int(text)


def parse_expand(text: str, *, nested_supported: Collection[str]) -> tuple[ExpandItem, ...]:
    """``$expand=nav($select=a;$filter=...),other`` → expand items with nested options."""
    items: list[ExpandItem] = []
    for raw_part in split_top_level(text, ","):
        part = raw_part.strip()
        match = re.fullmatch(r"([A-Za-z_][\w.]*)(?:\((.*)\))?", part, re.DOTALL)
        if match is None:
            if "/" in part or part == "*":
                raise ODataQueryError(f"'$expand={part}' is not supported.", kind="unsupported", option="$expand")
            raise ODataQueryError(f"'{part}' is not a valid $expand item.", option="$expand")
        nested: dict[str, str] = {}
        if match.group(2) is not None and match.group(2).strip():
            for option in split_top_level(match.group(2), ";"):
                name, sep, value = option.strip().partition("=")
                if not sep:
                    raise ODataQueryError(f"'{option.strip()}' is not a valid nested option.", option="$expand")
                nested[name.strip()] = value
        options = parse_query(nested, supported=nested_supported, nested_supported=nested_supported)
        items.append(ExpandItem(match.group(1), options))
    return tuple(items)


def parse_query(
    params: Mapping[str, str],
    *,
    supported: Collection[str],
    nested_supported: Collection[str] = ("$select", "$filter", "$orderby", "$top", "$expand"),
) -> QueryOptions:
    """Parse system query options.

    Args:
        params: the query parameters (one value each).
        supported: the ``$`` options this API accepts here; any other ``$`` option raises.
        nested_supported: the options accepted inside ``$expand(...)``.

    Raises:
        ODataQueryError: an unsupported option or a malformed value. ``option`` names the culprit.
    """
    custom: dict[str, str] = {}
    values: dict[str, str] = {}
    for raw_name, value in params.items():
        name = raw_name.strip()
        if not name.startswith("$"):
            custom[name] = value
            continue
        lowered = name.lower()
        if lowered not in KNOWN_OPTIONS:
            raise ODataQueryError(f"The query parameter {name} is not supported", kind="unsupported", option=name)
        if lowered not in supported:
            raise ODataQueryError(f"The query parameter {name} is not supported", kind="unsupported", option=lowered)
        values[lowered] = value
    filter_text = values.get("$filter")
    filter_expr = None
    if filter_text is not None:
        try:
            filter_expr = parse_filter(filter_text)
        except ODataQueryError as exc:
            exc.option = "$filter"
            raise
    count_text = values.get("$count", "false").strip().lower()
    if count_text not in ("true", "false"):
        raise ODataQueryError(
            f"The value '{count_text}' of $count is not true or false.", kind="invalid_value", option="$count"
        )
    return QueryOptions(
        filter=filter_expr,
        filter_text=filter_text,
        select=parse_select(values["$select"]) if "$select" in values else (),
        orderby=parse_orderby(values["$orderby"]) if "$orderby" in values else (),
        top=_parse_non_negative("$top", values["$top"]) if "$top" in values else None,
        skip=_parse_non_negative("$skip", values["$skip"]) if "$skip" in values else None,
        count=count_text == "true",
        expand=parse_expand(values["$expand"], nested_supported=nested_supported) if "$expand" in values else (),
        skiptoken=values.get("$skiptoken"),
        deltatoken=values.get("$deltatoken"),
        custom=custom,
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    # Nulls sort first ascending, like SQL Server; numbers compare as Decimal, strings case-blind.
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float | Decimal):
        return (1, Decimal(str(value)))
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, str(value))


def sort_rows(rows: Iterable[Any], orderby: Iterable[OrderItem], get: Callable[[Any, str], Any]) -> list[Any]:
    """Rows sorted by the order items (stable; the last item is applied first)."""
    result = list(rows)
    for item in reversed(list(orderby)):
        name = item.property

        def key(row: Any, name: str = name) -> tuple[int, Any]:
            return _sort_key(get(row, name))

        result.sort(key=key, reverse=item.descending)
    return result
