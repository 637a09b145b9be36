"""Measuring helpers: request counting, throughput and peak memory of one step."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.config import SETTINGS

# Every timer off in a benchmark's stack: only what the benchmark starts runs (and is counted).
# Derived from the settings, so a new timer cannot slip into the figures.
NEVER = "0 0 0 1 1 *"
QUIET = {name: NEVER for name in SETTINGS if name.startswith("SCHEDULE_")}


class RequestCounter:
    """Counts HTTP requests an azure-core client sends (pass ``hook`` as ``raw_request_hook``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def hook(self, _request: Any) -> None:
        with self._lock:
            self.count += 1


@dataclass(frozen=True)
class StepResult:
    """What one measured step did."""

    name: str
    records: int
    requests: int
    seconds: float
    peak_memory_bytes: int

    @property
    def requests_per_record(self) -> float:
        return self.requests / self.records if self.records else 0.0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@contextmanager
def _traced() -> Iterator[Callable[[], int]]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(name: str, records: int, counter: RequestCounter, step: Callable[[], object]) -> StepResult:
    """Run ``step`` once, counting requests, wall time and peak Python heap."""
    before = counter.count
    with _traced() as peak:
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
        peak_bytes = peak()
    return StepResult(name, records, counter.count - before, seconds, peak_bytes)
