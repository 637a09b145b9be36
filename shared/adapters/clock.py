"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """``Clock`` reading the system time in UTC."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        return datetime.now(UTC)
