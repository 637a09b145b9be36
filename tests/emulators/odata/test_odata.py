"""The API-neutral OData query module: parsing, evaluation, options, and loud failures."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from emulators._odata import (
    Call,
    Compare,
    Literal,
    ODataQueryError,
    OrderItem,
    Property,
    evaluate,
    parse_filter,
    parse_query,
    referenced_properties,
    sort_rows,
)

pytestmark = pytest.mark.unit

ROW: dict[str, Any] = {
    "name": "O'Brien & Søn",
    "revenue": 1500.5,
    "employees": 12,
    "_parentcustomerid_value": "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    "modifiedon": "2026-11-20T10:15:00Z",
    "isdisabled": False,
    "description": None,
}


def matches(text: str, row: dict[str, Any] = ROW, **kwargs: Any) -> bool:
    return evaluate(parse_filter(text), row.get, **kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name eq 'O''Brien & Søn'", True),
        ("name eq 'o''brien & søn'", True),  # Dataverse compares strings case-insensitively
        ("name ne 'x'", True),
        ("revenue gt 1500", True),
        ("revenue ge 1500.5", True),
        ("revenue lt 1500.5", False),
        ("employees le 12 and revenue gt 0", True),
        ("employees eq 1 or employees eq 12", True),
        ("not (employees eq 12)", False),
        ("(employees eq 1 or employees eq 12) and not contains(name,'xyz')", True),
        ("contains(name,'brien')", True),
        ("startswith(name,'O''B')", True),
        ("endswith(name,'søn')", True),
        ("description eq null", True),
        ("description ne null", False),
        ("missing eq null", True),
        ("description gt 'a'", False),
        ("_parentcustomerid_value eq 3f2504e0-4f89-11d3-9a0c-0305e82c3301", True),
        ("modifiedon gt 2026-11-20T10:14:59Z", True),
        ("modifiedon lt 2026-11-20", False),
        ("modifiedon ge 2026-11-20T11:15:00+01:00", True),
        ("isdisabled eq false", True),
        ("isdisabled", False),
    ],
)
def test_filter_evaluation(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_case_sensitive_mode_for_apis_that_need_it() -> None:
    assert matches("name eq 'o''brien & søn'", case_insensitive=False) is False


def test_parser_builds_typed_literals() -> None:
    expr = parse_filter(
        "a eq 'x' and b eq 3f2504e0-4f89-11d3-9a0c-0305e82c3301 or c gt 1.25 and d eq 2026-01-02T03:04:05Z"
    )
    assert set(referenced_properties(expr)) == {"a", "b", "c", "d"}
    assert parse_filter("x eq 3") == Compare("eq", Property("x"), Literal(3, "int"))
    assert parse_filter("x eq 1.5") == Compare("eq", Property("x"), Literal(Decimal("1.5"), "decimal"))
    assert parse_filter("x eq -2") == Compare("eq", Property("x"), Literal(-2, "int"))
    guid = parse_filter("x eq 3F2504E0-4F89-11D3-9A0C-0305E82C3301")
    assert isinstance(guid, Compare) and guid.right == Literal(
        uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "guid"
    )
    when = parse_filter("x lt 2026-01-02T03:04:05Z")
    assert isinstance(when, Compare) and when.right == Literal(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "datetime")
    assert parse_filter("contains(name, 'a')") == Call("contains", (Property("name"), Literal("a", "string")))
    assert parse_filter("primarycontactid/fullname eq 'x'") == Compare(
        "eq", Property("primarycontactid/fullname"), Literal("x", "string")
    )


@pytest.mark.parametrize(
    "text",
    [
        "revenue add 1 gt 2",
        "name in ('a','b')",
        "contact_customer_accounts/any(c:c/fullname eq 'x')",
        "tolower(name) eq 'x'",
        "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a'])",
        "name eq @p1",
    ],
)
def test_valid_odata_outside_the_subset_is_unsupported(text: str) -> None:
    with pytest.raises(ODataQueryError) as caught:
        parse_filter(text)
    assert caught.value.kind == "unsupported"


@pytest.mark.parametrize("text", ["", "name eq", "(name eq 'a'", "name eq 'unterminated", "eq 'a'", "name eq 'a')"])
def test_malformed_filters_are_syntax_errors(text: str) -> None:
    with pytest.raises(ODataQueryError) as caught:
        parse_filter(text)
    assert caught.value.kind == "syntax"


def test_type_clashes_fail_at_evaluation() -> None:
    with pytest.raises(ODataQueryError) as caught:
        matches("revenue eq 'a lot'")
    assert caught.value.kind == "invalid_value"


def test_parse_query_options_and_nested_expand() -> None:
    options = parse_query(
        {
            "$select": "name,accountnumber",
            "$filter": "statecode eq 0",
            "$orderby": "name desc, createdon",
            "$top": "5",
            "$count": "true",
            "$expand": "primarycontactid($select=fullname),contact_customer_accounts($select=fullname;"
            "$filter=contains(fullname,'a;b');$orderby=fullname;$top=2;$expand=owninguser($select=fullname))",
            "custom": "kept",
        },
        supported={"$select", "$filter", "$orderby", "$top", "$count", "$expand"},
    )
    assert options.select == ("name", "accountnumber")
    assert options.orderby == (OrderItem("name", True), OrderItem("createdon", False))
    assert options.top == 5 and options.count is True
    assert [e.navigation for e in options.expand] == ["primarycontactid", "contact_customer_accounts"]
    nested = options.expand[1].options
    assert nested.select == ("fullname",) and nested.top == 2
    assert nested.filter == Call("contains", (Property("fullname"), Literal("a;b", "string")))
    assert nested.expand[0].navigation == "owninguser"
    assert options.custom == {"custom": "kept"}


@pytest.mark.parametrize(
    ("params", "option", "kind"),
    [
        ({"$skip": "10"}, "$skip", "unsupported"),
        ({"$search": "x"}, "$search", "unsupported"),
        ({"$bogus": "x"}, "$bogus", "unsupported"),
        ({"$top": "-1"}, "$top", "invalid_value"),
        ({"$count": "maybe"}, "$count", "invalid_value"),
        ({"$select": "*"}, "$select", "unsupported"),
        ({"$orderby": "name sideways"}, "$orderby", "syntax"),
        ({"$filter": "name eq"}, "$filter", "syntax"),
        ({"$expand": "a($skip=1)"}, "$skip", "unsupported"),
    ],
)
def test_parse_query_rejects_loudly(params: dict[str, str], option: str, kind: str) -> None:
    with pytest.raises(ODataQueryError) as caught:
        parse_query(params, supported={"$select", "$filter", "$orderby", "$top", "$count", "$expand"})
    assert caught.value.option == option
    assert caught.value.kind == kind
    if option == "$skip" and "$expand" not in params:
        assert caught.value.message == "The query parameter $skip is not supported"


def test_sort_rows_orders_nulls_first_and_is_stable() -> None:
    rows = [{"n": "b", "v": 2}, {"n": None, "v": 1}, {"n": "A", "v": 3}, {"n": "a", "v": 0}]
    ordered = sort_rows(rows, [OrderItem("n")], lambda row, name: row.get(name))
    assert [r["v"] for r in ordered] == [1, 3, 0, 2]
    descending = sort_rows(rows, [OrderItem("v", descending=True)], lambda row, name: row.get(name))
    assert [r["v"] for r in descending] == [3, 2, 1, 0]
