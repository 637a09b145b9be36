"""Holding a mapping's lease while records may be created (see ``shared.domain.leases``)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from shared.domain.leases import LEASE_PERIOD, Lease
from shared.errors import RetriableError, SyncError
from shared.ports import Clock, LeaseStore

__all__ = ["MappingBusy", "hold_mapping", "mapping_lease_name"]

_log = logging.getLogger(__name__)


class MappingBusy(RetriableError):
    """Another writer holds the mapping's lease; try again later."""

    def __init__(self, mapping: str, holder: Lease | None) -> None:
        who = f" ({holder.holder})" if holder else ""
        super().__init__(
            f"Another synchronization of {mapping}{who} is writing its records; try again when it has finished.",
            code="MappingBusy",
            retry_after=(holder.expires_at - datetime.now(UTC)).total_seconds() if holder else None,
        )
        self.holder = holder


def mapping_lease_name(mapping: str) -> str:
    """The lease that guards writes of ``mapping``'s records."""
    return f"mapping:{mapping}"


@contextmanager
def hold_mapping(
    mapping: str,
    holder: str,
    *,
    leases: LeaseStore,
    clock: Clock,
    wait: timedelta = timedelta(0),
    period: timedelta = LEASE_PERIOD,
    sleep: Callable[[float], None] = time.sleep,
    yield_to_full_sync: bool = False,
) -> Iterator[Lease]:
    """Hold ``mapping``'s lease for the block, renewing it in the background while the block runs.

    Waits up to ``wait`` for a current holder to finish; with ``yield_to_full_sync``, not at all
    when the holder is a full synchronization (which can hold it for minutes).

    Raises:
        MappingBusy: the lease stayed held by someone else for the whole wait.
    """
    name = mapping_lease_name(mapping)
    # Unique per hold: two deliveries of the same message, or two requests for the same record,
    # are two writers and must exclude each other.
    holder = f"{holder}/{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + wait.total_seconds()
    pause = 0.1
    while (lease := leases.try_acquire(name, holder, period, clock.now())) is None:
        if time.monotonic() >= deadline:
            raise MappingBusy(mapping, leases.get(name))
        if yield_to_full_sync and (seen := leases.get(name)) is not None and seen.held_by_full_sync:
            raise MappingBusy(mapping, seen)
        sleep(min(pause, max(deadline - time.monotonic(), 0.01)))
        pause = min(pause * 2, 2.0)
    stop = threading.Event()
    current = [lease]

    def renew() -> None:
        # A third of the period apart, so one slow Table Storage call does not let it lapse.
        while not stop.wait(period.total_seconds() / 3):
            try:
                renewed = leases.renew(current[0], period, clock.now())
            except SyncError as error:
                _log.warning("renewing lease %s failed (%s); retrying", name, error.message)
                continue
            if renewed is None:
                _log.error("lease %s was lost while held by %s", name, holder)
                return
            current[0] = renewed

    renewer = threading.Thread(target=renew, name=f"lease-{mapping}", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        try:
            leases.release(current[0])
        except SyncError as error:  # it expires on its own within one period
            _log.warning("releasing lease %s failed: %s", name, error.message)
