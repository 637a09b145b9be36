"""In-memory tables per company, keyed by entity set and id, with versions, etags and change events.

Everything that reads or writes goes through :class:`Store` under its lock, and copies: a caller
never holds a reference into the tables (so a response cannot be changed by a later write).
Internal bookkeeping lives in keys starting with ``_`` and is never serialized.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["ChangeListener", "Store", "format_ms"]

Record = dict[str, Any]
ChangeListener = Callable[[str, str, str, str], None]


def format_ms(moment: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds, as BC writes ``lastModifiedDateTime``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Store:
    """The emulator's whole state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.companies: dict[str, Record] = {}
        self.tables: dict[str, dict[str, dict[str, Record]]] = {}
        self.subscriptions: dict[str, Record] = {}
        self.counters: dict[str, int] = {}
        self.credits: dict[str, float] = {}  # customer id → unapplied payments
        self._seq = 0
        self._version = 0
        # Moves on every insert, stamp (update) and delete: what an index is valid for.
        self.generation = 0
        self._last_stamp: dt.datetime | None = None
        self.listeners: list[ChangeListener] = []
        # While a transactional $batch runs, change events wait here: a rolled-back batch must not
        # have announced anything.
        self.listeners_paused = False
        self._paused: list[tuple[str, str, str, str]] = []

    # -- time and versions -------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """A timestamp strictly after the previous one at millisecond precision.

        Two writes in the same millisecond would otherwise share a ``lastModifiedDateTime`` and a
        ``gt`` watermark could skip one of them.
        """
        with self.lock:
            now = dt.datetime.now(dt.UTC)
            moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if self._last_stamp is not None and moment <= self._last_stamp:
                moment = self._last_stamp + dt.timedelta(milliseconds=1)
            self._last_stamp = moment
            return moment

    def today(self) -> str:
        """Today's work date."""
        return dt.datetime.now(dt.UTC).date().isoformat()

    def stamp(self, record: Record, *, modified_field: bool = True) -> None:
        """Give ``record`` a new version (hence etag) and, if it has one, a new lastModifiedDateTime."""
        with self.lock:
            self._version += 1
            self.generation += 1
            record["_version"] = self._version
            stamp = format_ms(self.now())
            record["_modified"] = stamp
            if modified_field:
                record["lastModifiedDateTime"] = stamp

    @staticmethod
    def etag(record: Record) -> str:
        """A weak, opaque etag in BC's style (``W/"<base64>"``)."""
        inner = f"20;{record.get('_version', 0):020d}{str(record.get('id', ''))[:8]};"
        token = base64.b64encode(f"'{inner}'".encode()).decode("ascii")
        return f'W/"{token}"'

    # -- tables ----------------------------------------------------------------------------------------
    def add_company(self, record: Record) -> None:
        """Create a company with empty tables."""
        with self.lock:
            self.companies[record["id"]] = record
            self.tables.setdefault(record["id"], {})

    def table(self, company: str, set_name: str) -> dict[str, Record]:
        """The live table (callers hold the lock and copy what they hand out)."""
        return self.tables[company].setdefault(set_name, {})

    def insert(self, company: str, set_name: str, record: Record, *, notify: bool = True) -> Record:
        """Add ``record`` (it must have an ``id``)."""
        with self.lock:
            self._seq += 1
            self.generation += 1
            record["_seq"] = self._seq
            self.table(company, set_name)[record["id"]] = record
            if notify:
                self._emit(company, set_name, record["id"], "created")
            return record

    def delete(self, company: str, set_name: str, record_id: str, *, notify: bool = True) -> None:
        """Remove a record."""
        with self.lock:
            self.generation += 1
            self.table(company, set_name).pop(record_id, None)
            if notify:
                self._emit(company, set_name, record_id, "deleted")

    def touched(self, company: str, set_name: str, record_id: str) -> None:
        """Announce an update (after the caller changed and stamped the record)."""
        self._emit(company, set_name, record_id, "updated")

    def next_number(self, company: str, series: str, start: int, template: str) -> str:
        """The next number in a company's series, e.g. ``S-ORD101001``."""
        with self.lock:
            key = f"{company}/{series}"
            value = self.counters.get(key, start)
            self.counters[key] = value + 1
            return template.format(value)

    def _emit(self, company: str, set_name: str, record_id: str, change: str) -> None:
        if self.listeners_paused:
            self._paused.append((company, set_name, record_id, change))
            return
        for listener in list(self.listeners):
            listener(company, set_name, record_id, change)

    def flush_paused(self) -> None:
        """Announce the events held back during a committed transactional batch."""
        events, self._paused = self._paused, []
        for event in events:
            self._emit(*event)

    def drop_paused(self) -> None:
        """Forget the events of a rolled-back batch."""
        self._paused = []

    @staticmethod
    def new_id() -> str:
        """A fresh SystemId."""
        return str(uuid.uuid4())

    # -- back door ------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A deep copy of everything (JSON-able)."""
        with self.lock:
            return copy.deepcopy(
                {
                    "companies": self.companies,
                    "tables": self.tables,
                    "subscriptions": self.subscriptions,
                    "counters": self.counters,
                    "credits": self.credits,
                    "seq": self._seq,
                    "version": self._version,
                }
            )

    def restore(self, state: dict[str, Any]) -> None:
        """Replace everything with a :meth:`snapshot`."""
        with self.lock:
            state = copy.deepcopy(state)
            self.generation += 1
            self.companies = state["companies"]
            self.tables = state["tables"]
            self.subscriptions = state.get("subscriptions", {})
            self.counters = state.get("counters", {})
            self.credits = state.get("credits", {})
            self._seq = max(self._seq, int(state.get("seq", 0)))
            # Versions only grow, so an etag taken before a restore never matches a restored row by accident.
            self._version = max(self._version, int(state.get("version", 0)))

    def clear(self) -> None:
        """Forget all data (companies included)."""
        with self.lock:
            self.generation += 1
            self.companies.clear()
            self.tables.clear()
            self.subscriptions.clear()
            self.counters.clear()
            self.credits.clear()
