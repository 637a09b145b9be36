"""Integration table mappings as data: what couples to what, which way, and how fields map.

A mapping is a frozen value. The defaults live one module per table in ``shared/mappings``;
configuration can override parts of them without code (``shared.mappings.registry``). Nothing
here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from shared.domain.state import SyncDirection

__all__ = [
    "DeletionConflictResolution",
    "FieldMapping",
    "MatchRule",
    "TableMapping",
    "UpdateConflictResolution",
]


class UpdateConflictResolution(enum.StrEnum):
    """What to do when both sides changed a bidirectional field since the last sync."""

    NONE = "None"  # fail the record; an administrator decides
    SEND_UPDATE_TO_DATAVERSE = "SendUpdateToDataverse"  # BC wins
    GET_UPDATE_FROM_DATAVERSE = "GetUpdateFromDataverse"  # Dataverse wins


class DeletionConflictResolution(enum.StrEnum):
    """What to do when a coupled record was deleted on the destination side."""

    NONE = "None"  # fail the record
    RESTORE_RECORDS = "RestoreRecords"  # recreate the destination and couple it anew
    REMOVE_COUPLING = "RemoveCoupling"  # forget the coupling


@dataclass(frozen=True)
class MatchRule:
    """How a field takes part in match-based coupling (behaviour reference §2.10)."""

    priority: int = 0  # groups are tried in ascending priority
    case_sensitive: bool = False


@dataclass(frozen=True)
class FieldMapping:
    """One field of a mapping, in each system's own field names.

    A missing source field with a ``constant`` writes the constant to the target. A ``lookup``
    names the mapping through whose couplings the value is translated (a BC id or code to a
    Dataverse row id and back). ``transform`` names a pure function in
    ``shared.mappings.transforms`` applied in the direction of travel.
    """

    bc_field: str | None
    dataverse_field: str | None
    direction: SyncDirection
    constant: Any = None
    lookup: str | None = None
    transform: str | None = None
    not_null: bool = False  # a lookup that resolves to nothing leaves the target unchanged
    clear_on_failed_sync: bool = False  # an unresolvable lookup blanks the target instead of failing
    match: MatchRule | None = None
    enabled: bool = True
    insert_only: bool = False  # written when the target record is created, never on update

    def flows(self, direction: SyncDirection) -> bool:
        """Whether this field is written in a pass going ``direction``."""
        if not self.enabled:
            return False
        if self.direction is SyncDirection.BIDIRECTIONAL:
            return True
        return self.direction is direction

    def source_field(self, direction: SyncDirection) -> str | None:
        """The field read in a pass going ``direction``."""
        return self.bc_field if direction is SyncDirection.TO_DATAVERSE else self.dataverse_field

    def target_field(self, direction: SyncDirection) -> str | None:
        """The field written in a pass going ``direction``."""
        return self.dataverse_field if direction is SyncDirection.TO_DATAVERSE else self.bc_field


@dataclass(frozen=True)
class TableMapping:
    """One integration table mapping (the built-in "Integration Table Mapping" row + its fields)."""

    name: str
    bc_entity_set: str  # BC API v2.0 entity set, e.g. "customers"
    dataverse_entity_set: str  # e.g. "accounts"
    dataverse_key: str  # primary key attribute, e.g. "accountid"
    direction: SyncDirection
    fields: tuple[FieldMapping, ...]
    bc_key: str = "id"
    bc_modified_field: str = "lastModifiedDateTime"
    dataverse_modified_field: str = "modifiedon"
    bc_name_field: str = "displayName"
    dataverse_name_field: str = "name"
    sync_only_coupled: bool = True
    bc_filter: str | None = None  # OData $filter on the BC side
    dataverse_filter: str | None = None  # OData $filter on the Dataverse side
    dependencies: tuple[str, ...] = ()
    update_conflict: UpdateConflictResolution = UpdateConflictResolution.NONE
    deletion_conflict: DeletionConflictResolution = DeletionConflictResolution.NONE
    sync_after_match_coupling: bool = False
    create_new_if_no_match: bool = False
    # Values written to a new Dataverse row / BC record besides the mapped fields (the built-in
    # "integration table config template").
    dataverse_insert_defaults: tuple[tuple[str, Any], ...] = ()
    bc_insert_defaults: tuple[tuple[str, Any], ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)  # gaps against the built-in, for docs

    def allows(self, direction: SyncDirection) -> bool:
        """Whether a pass going ``direction`` may run on this mapping."""
        return self.direction is SyncDirection.BIDIRECTIONAL or self.direction is direction

    def fields_for(self, direction: SyncDirection) -> tuple[FieldMapping, ...]:
        """The enabled field mappings written in a pass going ``direction``."""
        return tuple(f for f in self.fields if f.flows(direction))

    def match_fields(self) -> tuple[FieldMapping, ...]:
        """Fields marked for match-based coupling."""
        return tuple(f for f in self.fields if f.match is not None and f.enabled)
