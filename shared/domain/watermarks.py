"""Which window of modification times a pass reads, and where its watermark moves afterwards.

The window's upper bound (the signpost) is frozen at the run's start, a little in the past so
that writes still committing on the API side are not stepped over; the lower bound reaches back
by an overlap so that clock skew between us and the API cannot hide a record. Records read
twice are harmless: the coupling timestamps make the second read an "Unchanged".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["ReadWindow", "next_watermark", "plan_window"]

DEFAULT_OVERLAP = timedelta(seconds=5)
DEFAULT_SETTLE = timedelta(seconds=2)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant from either API (``Z`` or offset; any number of fractional digits)."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_instant(moment: datetime) -> str:
    """The canonical text stored in a watermark: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ReadWindow:
    """Read records with ``since < modified <= until`` (``since`` ``None``: from the beginning)."""

    since: datetime | None
    until: datetime


def plan_window(
    watermark: str | None,
    run_started_at: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    settle: timedelta = DEFAULT_SETTLE,
) -> ReadWindow:
    """The window one pass reads, from the stored watermark and the run's start."""
    since = parse_instant(watermark) - overlap if watermark else None
    return ReadWindow(since=since, until=run_started_at - settle)


def next_watermark(previous: str | None, newest_seen: datetime | None, window: ReadWindow) -> str | None:
    """Where the watermark goes once everything read in ``window`` is committed.

    It moves to the newest modification seen, never past the window's end and never back.
    """
    candidates = [parse_instant(previous)] if previous else []
    if newest_seen is not None:
        candidates.append(min(newest_seen, window.until))
    return format_instant(max(candidates)) if candidates else None
