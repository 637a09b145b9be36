"""A collection page read lazily: the same records, link and members as parsing it whole."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.pages import JsonPage, Page, next_link_of


def _answer(records: list[Any], **members: Any) -> str:
    return json.dumps({"@odata.context": "https://host/$metadata#customers", "value": records, **members})


RECORDS = [
    {"id": "b", "displayName": 'Bäckerei "Zur Mühle"', "balance": 12.5, "lines": [{"n": 1}], "blocked": None},
    {"id": "a", "displayName": "Ørsted, ] { , }", "balance": 0, "lines": [], "blocked": True},
    {"id": "c", "displayName": "日本語", "balance": -3, "lines": [], "blocked": False},
]


def test_the_records_are_those_of_the_whole_answer_in_order() -> None:
    page = JsonPage(_answer(RECORDS, **{"@odata.nextLink": "https://host/next?$skiptoken=3"}))
    assert list(page) == RECORDS
    assert len(page) == 3
    assert page[1] == RECORDS[1]
    assert page[-1] == RECORDS[2]
    assert page[0:2] == RECORDS[:2]
    assert page.next_link == "https://host/next?$skiptoken=3"
    assert next_link_of(page) == page.next_link
    assert page.members["@odata.context"] == "https://host/$metadata#customers"


def test_each_read_parses_a_fresh_record() -> None:
    page = JsonPage(_answer(RECORDS))
    first = page[0]
    first["displayName"] = "changed by the caller"
    assert page[0]["displayName"] == RECORDS[0]["displayName"]


def test_convert_applies_to_every_record_read() -> None:
    page = JsonPage(_answer(RECORDS), convert=lambda r: {"key": r["id"]})
    assert [r["key"] for r in page] == ["b", "a", "c"]
    assert page[2] == {"key": "c"}


def test_whitespace_members_after_value_and_an_empty_page() -> None:
    text = ' {\n "value" : [ {"id": "x"} ,\n {"id": "y"} ] ,\r\n "@odata.nextLink" : "n" }\n'
    page = JsonPage(text)
    assert [r["id"] for r in page] == ["x", "y"]
    assert page.next_link == "n"
    empty = JsonPage('{"value": []}')
    assert len(empty) == 0 and list(empty) == [] and empty.next_link is None


def test_items_that_are_no_records_are_left_out() -> None:
    assert list(JsonPage('{"value": [1, {"id": "x"}, "s", null]}')) == [{"id": "x"}]


def test_an_empty_or_odd_link_means_the_last_page() -> None:
    assert JsonPage('{"value": [], "@odata.nextLink": ""}').next_link is None
    assert JsonPage('{"value": [], "@odata.nextLink": 7}').next_link is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html>Bad gateway</html>",
        "[]",
        "{}",
        '{"@odata.context": "x"}',
        '{"value": {"id": "x"}}',
        '{"value": [{"id": "x"}',  # cut off
        '{"value": [{"id": "x"} {"id": "y"}]}',
        '{"value": [{"id": "x"}]} trailing',
        '{"value": [{"id": "x"}], }',
        '{"value" [{"id": "x"}]}',
    ],
)
def test_anything_but_a_collection_page_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        JsonPage(text)


def test_out_of_range_index_raises_index_error() -> None:
    page = JsonPage(_answer(RECORDS))
    with pytest.raises(IndexError):
        page[3]
    with pytest.raises(IndexError):
        page[-4]


def test_a_materialised_page_keeps_its_link() -> None:
    page = Page([{"id": "x"}], "https://host/next")
    assert next_link_of(page) == "https://host/next"
    assert next_link_of([{"id": "x"}]) is None
