"""The health use-case: parallel probes, each within a time limit, failures reported not raised."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import ConfigurationError
from shared.usecases.health import check_health

pytestmark = pytest.mark.unit


class _Probe:
    def __init__(self, name: str, *, error: Exception | None = None, sleep: float = 0.0) -> None:
        self.name = name
        self._error = error
        self._sleep = sleep
        self.released = threading.Event()

    def check(self) -> None:
        if self._sleep:
            self.released.wait(self._sleep)
        if self._error:
            raise self._error


def test_all_answering_is_healthy() -> None:
    report = check_health([_Probe("a"), _Probe("b")])
    assert report.healthy and [d.name for d in report.dependencies] == ["a", "b"]


def test_a_failing_probe_is_reported_with_its_reason() -> None:
    report = check_health([_Probe("a"), _Probe("b", error=ConfigurationError("bad secret", code="TokenRequestFailed"))])
    assert not report.healthy
    failed = report.dependencies[1]
    assert (failed.ok, failed.error_code, failed.error_message) == (False, "TokenRequestFailed", "bad secret")


def test_an_unexpected_exception_reports_only_its_type() -> None:
    report = check_health([_Probe("a", error=ValueError("secret=hunter2"))])
    assert report.dependencies[0].error_message == "ValueError"


def test_a_hung_probe_times_out_without_delaying_the_answer() -> None:
    hung = _Probe("slow", sleep=30)
    started = time.monotonic()
    report = check_health([_Probe("a"), hung], timeout_seconds=0.3)
    hung.released.set()
    assert time.monotonic() - started < 2
    assert report.dependencies[1].error_code == "Timeout" and report.dependencies[0].ok
