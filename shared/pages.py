"""Pages of records as an API returned them, and how one OData collection page is read lazily.

A BC page holds up to 20,000 records, some 35 MB of JSON. Parsed whole it becomes twice that in
dicts and strings, alive until the last slice of the page is written, and the allocator keeps
much of what such a page freed, so the process grows page after page. ``JsonPage`` keeps the
answer as one string (one block, given back whole when the page goes) with each record's place
in it, and parses a record only when it is read: a sync holds the records of the slices it is
working on, not the page's. Nothing here does I/O.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

__all__ = ["JsonPage", "Page", "Record", "next_link_of"]

Record = dict[str, Any]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class Page(list[Record]):
    """One page of records as the API answered it, with the link that reads the next one
    (``None`` on the last page): a long read can stop after a page and resume there later."""

    def __init__(self, records: Iterable[Record], next_link: str | None = None) -> None:
        super().__init__(records)
        self.next_link = next_link


class JsonPage(Sequence[Record]):
    """One OData collection page (``{"value": [...], "@odata.nextLink": ...}``) kept as its text.

    ``page[i]`` and iteration parse the record then and there (through ``convert``), so a caller
    that goes through the page once holds one record at a time, and one that works in slices
    holds a slice. ``next_link`` and the other members of the answer are known at once.

    Raises:
        ValueError: (from the constructor) the text is not a JSON object with a ``value`` array.
    """

    def __init__(self, text: str, convert: Callable[[Record], Record] | None = None) -> None:
        self._text = text
        self._convert = convert
        self._starts = array("q")
        self._ends = array("q")
        self.members: dict[str, Any] = {}
        self._index()
        link = self.members.get("@odata.nextLink")
        self.next_link: str | None = link if isinstance(link, str) and link else None

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("page index out of range")
        return self._record(index)

    def __iter__(self) -> Iterator[Record]:
        for i in range(len(self)):
            yield self._record(i)

    def _record(self, index: int) -> Record:
        record: Record = _DECODER.decode(self._text[self._starts[index] : self._ends[index]])
        return self._convert(record) if self._convert is not None else record

    def _index(self) -> None:
        """Find every record's place and read the other members; records are parsed and dropped."""
        text, position = self._text, _skip(self._text, 0)
        found_value = False
        if not text.startswith("{", position):
            raise ValueError("the answer is not a JSON object")
        position = _skip(text, position + 1)
        if text.startswith("}", position):
            raise ValueError("the answer has no 'value' array")
        while True:
            name, position = _DECODER.raw_decode(text, position)
            position = _skip(text, position)
            if not isinstance(name, str) or not text.startswith(":", position):
                raise ValueError("the answer is not a JSON object")
            position = _skip(text, position + 1)
            if name == "value":
                position = self._index_values(position)
                found_value = True
            else:
                self.members[name], position = _DECODER.raw_decode(text, position)
            position = _skip(text, position)
            if text.startswith(",", position):
                position = _skip(text, position + 1)
                continue
            if text.startswith("}", position) and not text[position + 1 :].strip():
                break
            raise ValueError("the answer is not a JSON object")
        if not found_value:
            raise ValueError("the answer has no 'value' array")

    def _index_values(self, position: int) -> int:
        text = self._text
        if not text.startswith("[", position):
            raise ValueError("the answer's 'value' is not an array")
        position = _skip(text, position + 1)
        if text.startswith("]", position):
            return position + 1
        while True:
            item, end = _DECODER.raw_decode(text, position)
            if isinstance(item, dict):  # anything else is no record; the APIs never send one
                self._starts.append(position)
                self._ends.append(end)
            del item
            position = _skip(text, end)
            if text.startswith(",", position):
                position = _skip(text, position + 1)
            elif text.startswith("]", position):
                return position + 1
            else:
                raise ValueError("the answer's 'value' array is malformed")


def next_link_of(page: object) -> str | None:
    """The link to the page after ``page``, when it is a page that knows one."""
    return page.next_link if isinstance(page, Page | JsonPage) else None


def _skip(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position
