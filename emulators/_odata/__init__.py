"""API-neutral OData v4 query options for the local emulators (Dataverse and BC).

Parse with :func:`parse_query` (or :func:`parse_filter` alone), evaluate with :func:`evaluate`
against a getter of the emulator's choosing, order with :func:`sort_rows`. Anything outside the
supported subset raises :class:`ODataQueryError`; each emulator turns that into its own 400.
"""

from ._errors import ODataErrorKind, ODataQueryError
from ._filter import (
    BoolOp,
    Call,
    Compare,
    Expr,
    Literal,
    Not,
    Property,
    evaluate,
    parse_filter,
    referenced_properties,
)
from ._options import (
    KNOWN_OPTIONS,
    ExpandItem,
    OrderItem,
    QueryOptions,
    parse_expand,
    parse_orderby,
    parse_query,
    parse_select,
    sort_rows,
    split_top_level,
)

__all__ = [
    "KNOWN_OPTIONS",
    "BoolOp",
    "Call",
    "Compare",
    "ExpandItem",
    "Expr",
    "Literal",
    "Not",
    "ODataErrorKind",
    "ODataQueryError",
    "OrderItem",
    "Property",
    "QueryOptions",
    "evaluate",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_query",
    "parse_select",
    "referenced_properties",
    "sort_rows",
    "split_top_level",
]
