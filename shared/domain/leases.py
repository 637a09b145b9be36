"""Leases: who may write a mapping's records right now.

Two writers deciding about the same uncoupled record at once (the timer, a queued "sync now", a
webhook, a full-sync line, "Create in …") could both create it on the other side, and a coupling
written afterwards cannot undo the duplicate. So every path that may create records holds the
mapping's lease while it decides and writes. A lease expires on its own, so a crashed holder
blocks the others for one lease period at most; a live holder renews it while it works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["FULL_SYNC_HOLDER_PREFIX", "LEASE_PERIOD", "Lease", "lease_is_free"]

LEASE_PERIOD = timedelta(seconds=60)  # renewed every third of this while held
FULL_SYNC_HOLDER_PREFIX = "full-sync:"


@dataclass(frozen=True)
class Lease:
    """One held (or last held) lease on a named resource."""

    name: str
    holder: str
    expires_at: datetime
    etag: str | None = None

    @property
    def held_by_full_sync(self) -> bool:
        """A full synchronization holds it: it will read every record of the mapping anyway."""
        return self.holder.startswith(FULL_SYNC_HOLDER_PREFIX)


def lease_is_free(existing: Lease | None, holder: str, now: datetime) -> bool:
    """Whether ``holder`` may take the lease: nobody holds it, it expired, or ``holder`` has it."""
    return existing is None or existing.expires_at <= now or existing.holder == holder
