"""What the BC → Sales document jobs (posted invoices, payment status, statistics) share: reading a
modification window, moving its watermark without ever stepping over a failure, and error rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.adapters.tables._keys import newest_first_key
from shared.domain.state import SyncErrorRecord, Watermark
from shared.domain.watermarks import ReadWindow, next_watermark, parse_instant, plan_window
from shared.odata import literal
from shared.ports import SyncErrorStore, WatermarkStore

_T = TypeVar("_T")
WATERMARK_PASS = "bc"  # noqa: S105 - a pass name, not a secret
# BC keeps lastModifiedDateTime to the millisecond: one tick before a failed record re-reads it.
_TICK = timedelta(milliseconds=1)


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def flatten(pages: Iterable[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every record of a paged read."""
    return [record for page in pages for record in page]


def open_window(watermarks: WatermarkStore, job: str, now: datetime) -> tuple[Watermark | None, ReadWindow]:
    """The stored watermark of ``job`` and the window this run reads."""
    stored = watermarks.get(job, WATERMARK_PASS)
    return stored, plan_window(stored.value if stored else None, now)


def window_filter(window: ReadWindow) -> str:
    """The window as a BC ``$filter`` on ``lastModifiedDateTime``."""
    upper = f"lastModifiedDateTime le {literal(window.until)}"
    return upper if window.since is None else f"lastModifiedDateTime gt {literal(window.since)} and {upper}"


def watermark_after(previous: str | None, window: ReadWindow, failed_modified: Iterable[str]) -> str | None:
    """Where the watermark goes after a run: the window's end, or just before the oldest failure.

    A failed record is read again by the next run however long it keeps failing: the watermark
    never passes it (the built-in's "advances only if no unexpected error happened"). ``None``
    when it stays where it is.
    """
    failures = [parse_instant(value) for value in failed_modified if value]
    newest = min(failures) - _TICK if failures else window.until
    value = next_watermark(previous, newest, window)
    if value is None or (previous is not None and parse_instant(value) <= parse_instant(previous)):
        return None
    return value


def close_window(
    watermarks: WatermarkStore,
    job: str,
    stored: Watermark | None,
    window: ReadWindow,
    failed_modified: Iterable[str],
) -> None:
    """Store :func:`watermark_after` (conditionally on the watermark read at the run's start)."""
    value = watermark_after(stored.value if stored else None, window, failed_modified)
    if value is not None:
        watermarks.advance(Watermark(job, WATERMARK_PASS, value, etag=stored.etag if stored else None))


def record_error(
    errors: SyncErrorStore,
    *,
    now: datetime,
    job: str,
    job_id: str,
    source: str,
    destination: str,
    message: str,
    detail: str,
) -> None:
    """One error row in the error log, like the sync engine writes them."""
    errors.add(
        SyncErrorRecord(
            error_id=newest_first_key(now, uuid.uuid4().hex[:12]),
            mapping=job,
            job_id=job_id,
            source=source,
            destination=destination,
            message=message,
            detail=detail,
            created_at=now,
        )
    )
