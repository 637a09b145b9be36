"""The in-memory organisation database: rows per table, row versions, delete tombstones.

Rows are plain dicts keyed by attribute logical name. Lookups are stored as
``{"id": <guid>, "entity": <logical name>}``; dates as ISO-8601 UTC strings. Every read and write
crosses a deep copy, so no caller can change stored state by holding a reference (the same
boundary the real service has at its serializer).

Atomicity: :meth:`Store.transaction` keeps an undo journal; change sets and bulk messages run
inside one and roll back as a unit. The store lock is re-entrant and held for the whole
transaction, so a change set is also isolated from concurrent requests.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]
KeyValues = tuple[Any, ...]


def _normalize(value: Any) -> Any:
    # Key matching is case-insensitive for text (SQL collation); lookups match on the referenced id.
    if isinstance(value, dict):
        return str(value.get("id", "")).lower()
    if isinstance(value, str):
        return value.casefold()
    return value


@dataclass(frozen=True)
class Tombstone:
    version: int
    entity: str
    id: str
    deleted_at: float


class Store:
    """Tables of rows, a global row-version counter and a tombstone log for change tracking."""

    def __init__(self, alternate_keys: Mapping[str, tuple[tuple[str, ...], ...]] | None = None) -> None:
        self.lock = threading.RLock()
        # Alternate-key indexes, so key lookups and uniqueness checks stay O(1) on large tables.
        self._key_specs = {
            entity: tuple(tuple(sorted(k)) for k in keys) for entity, keys in (alternate_keys or {}).items()
        }
        self._indexes: dict[tuple[str, tuple[str, ...]], dict[KeyValues, str]] = {}
        self._tables: dict[str, dict[str, Row]] = {}
        self._tombstones: list[Tombstone] = []
        self._version = 1000
        self._counters: dict[str, int] = {}
        self._journal: list[tuple[str, str, Row | None]] | None = None
        self._journal_tombstones = 0

    # -- versions ----------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def next_version(self) -> int:
        with self.lock:
            self._version += 1
            return self._version

    def next_number(self, name: str) -> int:
        """A per-name counter for generated document numbers (never rolled back, like a sequence)."""
        with self.lock:
            self._counters[name] = self._counters.get(name, 1000) + 1
            return self._counters[name]

    # -- reads -------------------------------------------------------------------------------
    def get(self, entity: str, record_id: str) -> Row | None:
        with self.lock:
            row = self._tables.get(entity, {}).get(record_id.lower())
            return copy.deepcopy(row) if row is not None else None

    def peek(self, entity: str, record_id: str) -> Row | None:
        """The stored row itself (no copy), for a read-only look at one value."""
        with self.lock:
            return self._tables.get(entity, {}).get(record_id.lower())

    def exists(self, entity: str, record_id: str) -> bool:
        with self.lock:
            return record_id.lower() in self._tables.get(entity, {})

    def rows(self, entity: str) -> list[Row]:
        """Deep copies of every row of ``entity`` in insertion order."""
        with self.lock:
            return copy.deepcopy(list(self._tables.get(entity, {}).values()))

    def peek_rows(self, entity: str) -> list[Row]:
        """The stored rows themselves, for read-only scans under :attr:`lock` (no copy)."""
        return list(self._tables.get(entity, {}).values())

    def tombstones_after(self, entity: str, version: int) -> list[Tombstone]:
        with self.lock:
            return [t for t in self._tombstones if t.entity == entity and t.version > version]

    # -- alternate keys ----------------------------------------------------------------------
    @staticmethod
    def _key_values(attributes: tuple[str, ...], values: Mapping[str, Any]) -> KeyValues | None:
        found = tuple(_normalize(values.get(name)) for name in attributes)
        return None if any(v is None for v in found) else found

    def _index(self, entity: str, key: str, row: Row) -> None:
        for attributes in self._key_specs.get(entity, ()):
            values = self._key_values(attributes, row)
            if values is not None:
                self._indexes.setdefault((entity, attributes), {})[values] = key

    def _unindex(self, entity: str, key: str, row: Row) -> None:
        for attributes in self._key_specs.get(entity, ()):
            values = self._key_values(attributes, row)
            index = self._indexes.get((entity, attributes), {})
            if values is not None and index.get(values) == key:
                del index[values]

    def _rebuild_indexes(self) -> None:
        self._indexes = {}
        for entity, table in self._tables.items():
            for key, row in table.items():
                self._index(entity, key, row)

    def find_by_key(self, entity: str, values: Mapping[str, Any]) -> str | None:
        """The id of the row whose alternate key ``values`` (attribute → value) match, if any."""
        attributes = tuple(sorted(values))
        if attributes not in self._key_specs.get(entity, ()):
            raise KeyError(f"{entity} has no alternate key {attributes}")
        wanted = self._key_values(attributes, values)
        with self.lock:
            return self._indexes.get((entity, attributes), {}).get(wanted) if wanted is not None else None

    # -- writes ------------------------------------------------------------------------------
    def put(self, entity: str, record_id: str, row: Row) -> None:
        with self.lock:
            table = self._tables.setdefault(entity, {})
            key = record_id.lower()
            previous = table.get(key)
            if self._journal is not None:
                self._journal.append((entity, key, copy.deepcopy(previous) if previous is not None else None))
            if previous is not None:
                self._unindex(entity, key, previous)
            table[key] = copy.deepcopy(row)
            self._index(entity, key, table[key])

    def delete(self, entity: str, record_id: str) -> None:
        with self.lock:
            table = self._tables.get(entity, {})
            key = record_id.lower()
            previous = table.pop(key, None)
            if previous is None:
                return
            self._unindex(entity, key, previous)
            if self._journal is not None:
                self._journal.append((entity, key, previous))
            self._tombstones.append(Tombstone(self.next_version(), entity, key, time.time()))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or (on an exception) not at all. Nests (joins the outer)."""
        with self.lock:
            if self._journal is not None:
                yield
                return
            self._journal = []
            tombstones_before = len(self._tombstones)
            try:
                yield
            except BaseException:
                for entity, key, previous in reversed(self._journal):
                    table = self._tables.setdefault(entity, {})
                    current = table.pop(key, None)
                    if current is not None:
                        self._unindex(entity, key, current)
                    if previous is not None:
                        table[key] = previous
                        self._index(entity, key, previous)
                del self._tombstones[tombstones_before:]
                raise
            finally:
                self._journal = None

    # -- back door ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tables": copy.deepcopy(self._tables),
                "tombstones": [t.__dict__ for t in self._tombstones],
                "version": self._version,
                "counters": dict(self._counters),
            }

    def restore(self, snapshot: dict[str, Any]) -> None:
        with self.lock:
            self._tables = copy.deepcopy(snapshot.get("tables", {}))
            self._tombstones = [Tombstone(**t) for t in snapshot.get("tombstones", [])]
            self._version = int(snapshot.get("version", 1000))
            self._counters = dict(snapshot.get("counters", {}))
            self._rebuild_indexes()

    def reset(self) -> None:
        self.restore({})

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {name: len(rows) for name, rows in self._tables.items() if rows}
