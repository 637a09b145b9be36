"""The slice pipeline: writes overlap, every written slice is settled, a failed write surfaces."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.domain.state import JobCounters
from shared.usecases.sync_engine import _Pipeline

pytestmark = pytest.mark.unit


class _Boom(Exception):
    pass


def _slices(pipeline: _Pipeline, plan: list[str], settled: list[str], running: list[int]) -> None:
    lock = threading.Lock()
    in_flight = [0]

    def write(name: str) -> Any:
        with lock:
            in_flight[0] += 1
            running.append(in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        if name.startswith("fail"):
            raise _Boom(name)
        return name

    def settle(prepared: Any) -> tuple[JobCounters, None]:
        settled.append(prepared)
        return JobCounters(inserted=1), None

    for name in plan:
        pipeline.submit(lambda n=name: write(n), settle)


def test_two_slices_are_written_at_once_and_all_are_settled_in_order() -> None:
    settled: list[str] = []
    running: list[int] = []
    with _Pipeline(enabled=True) as pipeline:
        _slices(pipeline, ["a", "b", "c", "d"], settled, running)
    assert settled == ["a", "b", "c", "d"]
    assert pipeline.counters.inserted == 4
    assert max(running) == 2  # the next slice's writes start while one is still being written


def test_a_failed_write_surfaces_and_every_slice_written_is_still_settled() -> None:
    settled: list[str] = []
    with pytest.raises(_Boom), _Pipeline(enabled=True) as pipeline:
        _slices(pipeline, ["a", "fail-b", "c", "d"], settled, [])
    # "a" was written before the failure and "c" alongside it: both exist on the destination and
    # must be coupled; "d" was never submitted.
    assert settled == ["a", "c"]


def test_disabled_it_writes_and_settles_each_slice_on_the_calling_thread() -> None:
    settled: list[str] = []
    running: list[int] = []
    with _Pipeline(enabled=False) as pipeline:
        _slices(pipeline, ["a", "b"], settled, running)
    assert settled == ["a", "b"] and max(running) == 1


def test_slow_bookkeeping_holds_the_reader_back_instead_of_piling_up_slices() -> None:
    # Settling (coupling writes) far slower than writing: without a bound, every slice read
    # would wait in the settling queue with its records, and memory would grow with the pass.
    release = threading.Event()
    written: list[str] = []
    settled: list[str] = []
    lock = threading.Lock()

    def write(name: str) -> str:
        with lock:
            written.append(name)
        return name

    def settle(prepared: Any) -> tuple[JobCounters, None]:
        release.wait(2)
        settled.append(prepared)
        return JobCounters(inserted=1), None

    def reader(pipeline: _Pipeline) -> None:
        for i in range(20):
            pipeline.submit(lambda n=f"s{i}": write(n), settle)

    with _Pipeline(enabled=True) as pipeline:
        thread = threading.Thread(target=reader, args=(pipeline,))
        thread.start()
        time.sleep(0.5)
        # One slice in settlement, two queued behind it, two being written, at most one more
        # handed over: the reader waits for the bookkeeping instead of reading on.
        with lock:
            held = len(written)
        assert 3 <= held <= 6
        assert thread.is_alive()
        release.set()
        thread.join(10)
    assert settled == [f"s{i}" for i in range(20)]
    assert pipeline.counters.inserted == 20
