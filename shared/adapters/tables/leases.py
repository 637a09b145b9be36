"""Leases in Table Storage: one row per leased name, taken and renewed only with ETag conditions."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables._errors import table_errors
from shared.adapters.tables._keys import encode_key
from shared.domain.leases import Lease, lease_is_free

_PARTITION = "lease"


def _entity(lease: Lease) -> dict[str, Any]:
    return {
        "PartitionKey": _PARTITION,
        "RowKey": encode_key(lease.name),
        "Name": lease.name,
        "Holder": lease.holder,
        "ExpiresAt": lease.expires_at,
    }


class TableLeaseStore:
    """``LeaseStore`` on Azure Table Storage."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, name: str) -> Lease | None:
        """The lease row as stored (held or expired), or ``None``."""
        with table_errors(f"reading lease {name}"):
            try:
                entity = self._table.get_entity(_PARTITION, encode_key(name))
            except ResourceNotFoundError:
                return None
        expires_at: datetime = entity["ExpiresAt"]
        return Lease(entity["Name"], entity["Holder"], expires_at, etag=entity.metadata["etag"])

    def try_acquire(self, name: str, holder: str, period: timedelta, now: datetime) -> Lease | None:
        """Take the lease for ``period`` if it is free; ``None`` if someone else holds it.

        Taking an expired lease is conditional on the row read, so of two workers who both saw
        it expire exactly one gets it.
        """
        existing = self.get(name)
        if not lease_is_free(existing, holder, now):
            return None
        wanted = Lease(name, holder, now + period)
        with table_errors(f"taking lease {name}"):
            try:
                if existing is None:
                    result = self._table.create_entity(_entity(wanted))
                else:
                    result = self._table.update_entity(
                        _entity(wanted),
                        mode=UpdateMode.REPLACE,
                        etag=existing.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                return None
        return Lease(name, holder, wanted.expires_at, etag=result["etag"])

    def renew(self, lease: Lease, period: timedelta, now: datetime) -> Lease | None:
        """Extend a held lease; ``None`` if it was lost (taken over after it expired)."""
        renewed = Lease(lease.name, lease.holder, now + period)
        with table_errors(f"renewing lease {lease.name}"):
            try:
                result = self._table.update_entity(
                    _entity(renewed),
                    mode=UpdateMode.REPLACE,
                    etag=lease.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return None
        return Lease(renewed.name, renewed.holder, renewed.expires_at, etag=result["etag"])

    def release(self, lease: Lease) -> None:
        """Give the lease back (nothing happens if it was lost meanwhile)."""
        with (
            table_errors(f"releasing lease {lease.name}"),
            contextlib.suppress(ResourceModifiedError, ResourceNotFoundError),
        ):
            self._table.delete_entity(
                _PARTITION, encode_key(lease.name), etag=lease.etag, match_condition=MatchConditions.IfNotModified
            )
