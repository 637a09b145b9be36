"""The BC → Sales jobs' read windows: the filter they send and where their watermark goes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.watermarks import ReadWindow
from shared.usecases._bc_to_sales import watermark_after, window_filter

pytestmark = pytest.mark.unit

SINCE = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
UNTIL = datetime(2026, 1, 5, 8, 30, 0, tzinfo=UTC)


def test_the_window_is_a_filter_on_bcs_own_modification_time() -> None:
    assert window_filter(ReadWindow(None, UNTIL)) == "lastModifiedDateTime le 2026-01-05T08:30:00.000Z"
    assert window_filter(ReadWindow(SINCE, UNTIL)) == (
        "lastModifiedDateTime gt 2026-01-05T08:00:00.000Z and lastModifiedDateTime le 2026-01-05T08:30:00.000Z"
    )


def test_without_failures_the_watermark_moves_to_the_windows_end() -> None:
    assert watermark_after(None, ReadWindow(None, UNTIL), []) == "2026-01-05T08:30:00.000000Z"
    assert watermark_after("2026-01-05T08:00:05Z", ReadWindow(SINCE, UNTIL), []) == "2026-01-05T08:30:00.000000Z"


def test_a_failure_holds_the_watermark_just_before_the_oldest_failed_record() -> None:
    failed = ["2026-01-05T08:20:00.5Z", "2026-01-05T08:10:00.25Z"]
    assert watermark_after("2026-01-05T08:00:05Z", ReadWindow(SINCE, UNTIL), failed) == "2026-01-05T08:10:00.249000Z"


def test_the_watermark_never_moves_back_or_stays_to_be_written_again() -> None:
    failed = ["2026-01-05T07:59:00Z"]  # older than the stored watermark (read in the window's overlap)
    assert watermark_after("2026-01-05T08:00:05Z", ReadWindow(SINCE, UNTIL), failed) is None
    assert watermark_after("2026-01-05T08:30:00Z", ReadWindow(SINCE, UNTIL), []) is None
