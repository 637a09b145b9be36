"""Mapping leases against a real Azurite: exclusive, expiring, renewed while held, yielded to a full sync."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest

from shared.adapters.clock import SystemClock
from shared.adapters.tables import TableLeaseStore, TableState
from shared.domain.leases import FULL_SYNC_HOLDER_PREFIX
from shared.resources import TABLE_LEASES
from shared.usecases._lease import MappingBusy, hold_mapping, mapping_lease_name

pytestmark = pytest.mark.stack

CLOCK = SystemClock()
MINUTE = timedelta(minutes=1)


@pytest.fixture
def leases(state: TableState) -> TableLeaseStore:
    return TableLeaseStore(state.table(TABLE_LEASES))


@pytest.fixture
def name() -> str:
    return f"test:{uuid.uuid4().hex[:8]}"


def test_a_held_lease_is_refused_to_others_until_released(leases: TableLeaseStore, name: str) -> None:
    held = leases.try_acquire(name, "a", MINUTE, CLOCK.now())
    assert held is not None and held.holder == "a"
    assert leases.try_acquire(name, "b", MINUTE, CLOCK.now()) is None
    # The holder itself may take it again (a redelivered message of the same run).
    again = leases.try_acquire(name, "a", MINUTE, CLOCK.now())
    assert again is not None
    leases.release(again)
    assert leases.get(name) is None
    assert leases.try_acquire(name, "b", MINUTE, CLOCK.now()) is not None


def test_an_expired_lease_goes_to_exactly_one_of_many_contenders(leases: TableLeaseStore, name: str) -> None:
    stale = leases.try_acquire(name, "crashed", timedelta(seconds=-1), CLOCK.now())
    assert stale is not None
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(holder: str) -> None:
        barrier.wait()
        if leases.try_acquire(name, holder, MINUTE, CLOCK.now()) is not None:
            winners.append(holder)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    stored = leases.get(name)
    assert stored is not None and stored.holder == winners[0]


def test_renewing_a_lost_lease_fails_and_releasing_it_leaves_the_new_holder(leases: TableLeaseStore, name: str) -> None:
    first = leases.try_acquire(name, "a", timedelta(seconds=-1), CLOCK.now())
    assert first is not None
    second = leases.try_acquire(name, "b", MINUTE, CLOCK.now())
    assert second is not None
    assert leases.renew(first, MINUTE, CLOCK.now()) is None
    leases.release(first)  # stale etag: must not delete b's lease
    stored = leases.get(name)
    assert stored is not None and stored.holder == "b"


def test_hold_mapping_waits_for_the_holder_then_takes_over(leases: TableLeaseStore, name: str) -> None:
    order: list[str] = []
    entered = threading.Event()

    def first() -> None:
        with hold_mapping(name, "first", leases=leases, clock=CLOCK):
            entered.set()
            time.sleep(0.6)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    entered.wait(10)
    with hold_mapping(name, "second", leases=leases, clock=CLOCK, wait=timedelta(seconds=10)):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]
    assert leases.get(mapping_lease_name(name)) is None  # released on the way out


def test_hold_mapping_gives_up_after_its_wait_naming_the_holder(leases: TableLeaseStore, name: str) -> None:
    with hold_mapping(name, "sync:job-1", leases=leases, clock=CLOCK):
        started = time.monotonic()
        with (
            pytest.raises(MappingBusy, match=r"sync:job-1") as busy,
            hold_mapping(name, "push", leases=leases, clock=CLOCK, wait=timedelta(seconds=0.5)),
        ):
            pass
        assert 0.4 <= time.monotonic() - started < 5
        assert busy.value.code == "MappingBusy" and busy.value.retry_after is not None


def test_a_full_sync_holder_is_yielded_to_at_once(leases: TableLeaseStore, name: str) -> None:
    with hold_mapping(name, f"{FULL_SYNC_HOLDER_PREFIX}run-1", leases=leases, clock=CLOCK):
        started = time.monotonic()
        with (
            pytest.raises(MappingBusy) as busy,
            hold_mapping(name, "push", leases=leases, clock=CLOCK, wait=timedelta(seconds=30), yield_to_full_sync=True),
        ):
            pass
        assert time.monotonic() - started < 5
        assert busy.value.holder is not None and busy.value.holder.held_by_full_sync


def test_a_held_lease_is_renewed_past_its_period(leases: TableLeaseStore, name: str) -> None:
    period = timedelta(seconds=1.5)
    with hold_mapping(name, "long", leases=leases, clock=CLOCK, period=period):
        time.sleep(3.5)  # more than two periods: only renewal keeps it
        assert leases.try_acquire(mapping_lease_name(name), "other", period, CLOCK.now()) is None
