"""The per-record sync decision (behaviour reference §2.5) and the skip rule (§2.6), as pure functions.

A use-case loads a page of source records, their couplings and their destinations in bulk,
resolves the lookup values the page needs, and asks :func:`decide` what to do with each record.
It then carries out the decision and records the outcome on the coupling with
:func:`coupling_after_success` or :func:`coupling_after_failure`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.domain.mapping import DeletionConflictResolution, FieldMapping, TableMapping, UpdateConflictResolution
from shared.domain.state import Coupling, SyncDirection

__all__ = [
    "Action",
    "LookupTable",
    "RecordDecision",
    "SyncOptions",
    "SyncRecord",
    "coupling_after_failure",
    "coupling_after_success",
    "decide",
    "desired_values",
    "source_value",
    "values_equal",
]

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
SUCCESS = "Success"
FAILURE = "Failure"


class Action(enum.StrEnum):
    """What happens to one source record; each maps to one job counter (or none)."""

    INSERT = "Insert"  # create on the destination and couple
    MODIFY = "Modify"  # write the changed fields
    UNCHANGED = "Unchanged"  # nothing to write (timestamps still move on)
    SKIP = "Skip"  # skipped record, or a conflict the mapping's rule resolves for the other side
    IGNORE = "Ignore"  # uncoupled and "sync only coupled records": not counted at all
    FAIL = "Fail"
    UNCOUPLE = "Uncouple"  # deletion conflict resolved by removing the coupling
    RESTORE = "Restore"  # deletion conflict resolved by recreating the destination

    @property
    def counter(self) -> str | None:
        """The ``JobCounters`` field this action adds one to."""
        return _COUNTERS[self]


_COUNTERS: dict[Action, str | None] = {
    Action.INSERT: "inserted",
    Action.RESTORE: "inserted",
    Action.MODIFY: "modified",
    Action.UNCHANGED: "unchanged",
    Action.SKIP: "skipped",
    Action.IGNORE: None,
    Action.FAIL: "failed",
    Action.UNCOUPLE: "uncoupled",
}


@dataclass(frozen=True)
class SyncRecord:
    """A record as the decision sees it: its id, when it last changed, its field values.

    ``version``: a Dataverse row's ``versionnumber`` (it grows with every change), which tells
    apart two changes within the whole second ``modifiedon`` keeps; ``None`` for BC records.
    """

    id: str
    modified_at: datetime | None
    values: Mapping[str, Any]
    version: int | None = None


@dataclass(frozen=True)
class SyncOptions:
    """How a run treats records.

    Attributes:
        force: write coupled records even when unchanged (full sync, Synchronize Now).
        create_uncoupled: create uncoupled source records on the other side even when the
            mapping syncs only coupled records (full sync, "Create in …").
    """

    force: bool = False
    create_uncoupled: bool = False


@dataclass(frozen=True)
class LookupTable:
    """Lookup values already resolved through couplings, per referenced mapping and direction.

    ``to_dataverse[mapping][bc value]`` is the coupled Dataverse row id; ``to_bc[mapping][row
    id]`` the coupled BC value. The use-case fills both in bulk for a page before deciding.
    """

    to_dataverse: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    to_bc: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def resolve(self, mapping: str, direction: SyncDirection, value: str) -> str | None:
        """The translated value, or ``None`` when ``value`` is not coupled."""
        table = self.to_dataverse if direction is SyncDirection.TO_DATAVERSE else self.to_bc
        key = value.lower() if _looks_like_guid(value) else value
        return table.get(mapping, {}).get(key)


@dataclass(frozen=True)
class RecordDecision:
    """The outcome of :func:`decide` for one source record."""

    action: Action
    changes: Mapping[str, Any] = field(default_factory=dict)  # destination field → value to write
    message: str = ""  # why, for FAIL and SKIP
    both_modified: bool = False  # both sides changed since the last sync (merge bookkeeping)


Transform = Callable[[Any, SyncDirection], Any]


def _looks_like_guid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and (value.strip() == "" or value == EMPTY_GUID))


def _normalized(value: Any) -> Any:
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return ("bool", value)  # True must not equal 1
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _looks_like_guid(text):
            return text.lower()
        try:
            # Numbers arrive as text from some APIs ("12.50"); compare them as numbers.
            if text and text[0] in "+-0123456789" and any(ch.isdigit() for ch in text):
                return Decimal(text).normalize()
        except InvalidOperation:
            pass
        return text
    return value


def values_equal(left: Any, right: Any) -> bool:
    """Compare two field values the way the built-in does before writing (§2.5 step 6).

    Blank, empty-GUID and null are the same; text is compared trimmed; GUIDs without case;
    numbers as decimals whatever their type or scale. A number 0 equals null: BC has no null
    numbers (its 0 is Dataverse's empty, e.g. "no credit limit"), so rewriting one as the other
    would only ping-pong.
    """
    a, b = _normalized(left), _normalized(right)
    if a is None or b is None:
        other = b if a is None else a
        return other is None or (isinstance(other, Decimal) and other == 0)
    return bool(a == b)


def desired_values(
    mapping: TableMapping,
    direction: SyncDirection,
    source: Mapping[str, Any],
    lookups: LookupTable,
    transforms: Mapping[str, Transform],
) -> tuple[dict[str, Any], list[str]]:
    """The destination field values a source record maps to, and the errors that prevent it.

    Errors name the unresolved dependency (the built-in: "%1 %2 must be coupled to a record in
    %3.") so an administrator knows what to couple first.
    """
    values: dict[str, Any] = {}
    errors: list[str] = []
    for field_mapping in mapping.fields_for(direction):
        target = field_mapping.target_field(direction)
        if target is None:
            continue
        value = source_value(field_mapping, direction, source, transforms)
        if field_mapping.lookup is not None:
            resolved = _resolve_lookup(field_mapping, direction, value, lookups=lookups, mapping=mapping, errors=errors)
            if resolved is _UNRESOLVED:
                continue
            value = resolved
            if value is None and field_mapping.not_null:
                continue  # keep the destination's current value (e.g. the owner)
        values[target] = value
    return values, errors


_UNRESOLVED = object()


def source_value(
    field_mapping: FieldMapping,
    direction: SyncDirection,
    source: Mapping[str, Any],
    transforms: Mapping[str, Transform],
) -> Any:
    source_field = field_mapping.source_field(direction)
    value = field_mapping.constant if source_field is None else source.get(source_field)
    if field_mapping.transform is not None:
        value = transforms[field_mapping.transform](value, direction)
    return value


def _resolve_lookup(
    field_mapping: FieldMapping,
    direction: SyncDirection,
    value: Any,
    *,
    lookups: LookupTable,
    mapping: TableMapping,
    errors: list[str],
) -> Any:
    assert field_mapping.lookup is not None
    if _is_blank(value):
        return None
    resolved = lookups.resolve(field_mapping.lookup, direction, str(value))
    if resolved is not None:
        return resolved
    if field_mapping.clear_on_failed_sync:
        return None
    source_field = field_mapping.source_field(direction)
    side = "Business Central" if direction is SyncDirection.TO_DATAVERSE else "Dataverse"
    errors.append(
        f"{side} {source_field} {value} must be coupled to a record in {field_mapping.lookup} "
        f"(needed by {mapping.name}); couple or synchronize {field_mapping.lookup} first."
    )
    return _UNRESOLVED


def _changed_since(modified_at: datetime | None, synced_at: datetime | None) -> bool:
    if modified_at is None:
        return True  # no timestamp to trust: assume changed, a write of equal values is a no-op
    return synced_at is None or modified_at > synced_at


def _changed(
    modified_at: datetime | None, synced_at: datetime | None, version: int | None, synced_version: int | None
) -> bool:
    """Whether a side changed since the coupling's last sync: by Dataverse row version where both
    are known (exact), else by modification time."""
    if version is not None and synced_version is not None:
        return version > synced_version
    return _changed_since(modified_at, synced_at)


def _stored_versions(coupling: Coupling, direction: SyncDirection) -> tuple[int | None, int | None]:
    """(source side's stored row version, destination side's) for a pass: Dataverse's only."""
    if direction is SyncDirection.TO_DATAVERSE:
        return None, coupling.dataverse_version
    return coupling.dataverse_version, None


def _stored_timestamps(coupling: Coupling, direction: SyncDirection) -> tuple[datetime | None, datetime | None]:
    """(source side's stored timestamp, destination side's stored timestamp) for a pass."""
    if direction is SyncDirection.TO_DATAVERSE:
        return coupling.bc_modified_at, coupling.dataverse_modified_at
    return coupling.dataverse_modified_at, coupling.bc_modified_at


def _last_result(coupling: Coupling, direction: SyncDirection) -> str | None:
    return coupling.last_result_to_dataverse if direction is SyncDirection.TO_DATAVERSE else coupling.last_result_to_bc


def unchanged_since_synced(
    coupling: Coupling | None,
    direction: SyncDirection,
    source_modified_at: datetime | None,
    options: SyncOptions,
    source_version: int | None = None,
) -> bool:
    """Whether ``decide`` would find a coupled source record Unchanged from the coupling alone.

    True for a coupled, not skipped record that neither failed toward this side last time nor
    changed since its last sync, in a run that does not force writes: a watermark's overlap
    re-reads the newest records of every table each run, and those need neither their
    destination nor their lookups read. (As in the built-in, whose windows never return an
    unchanged record, a destination deleted meanwhile is found when the source changes next.)
    """
    if coupling is None or coupling.skipped or options.force:
        return False
    if _last_result(coupling, direction) == FAILURE:
        return False
    stored_source, _ = _stored_timestamps(coupling, direction)
    stored_version, _ = _stored_versions(coupling, direction)
    return not _changed(source_modified_at, stored_source, source_version, stored_version)


def decide(
    mapping: TableMapping,
    direction: SyncDirection,
    source: SyncRecord,
    coupling: Coupling | None,
    destination: SyncRecord | None,
    *,
    lookups: LookupTable,
    transforms: Mapping[str, Transform],
    options: SyncOptions = SyncOptions(),
) -> RecordDecision:
    """Decide what to do with one source record in a pass going ``direction``.

    ``destination`` is the coupled record as it is now, ``None`` when it does not exist (for a
    coupled record: deleted on the destination side). Implements behaviour reference §2.5
    steps 1-9; see the module docstring for what callers do with the result.
    """
    if not mapping.allows(direction):
        return RecordDecision(
            Action.FAIL, message=f"The mapping {mapping.name} is not configured for {direction.value} synchronization."
        )
    # 1. Skipped records stay out until restored.
    if coupling is not None and coupling.skipped:
        return RecordDecision(Action.SKIP, message="The record is skipped; restore it to synchronize it again.")

    values, errors = desired_values(mapping, direction, source.values, lookups, transforms)

    # 3. Deletion conflict: coupled, but the destination is gone.
    if coupling is not None and destination is None:
        if mapping.deletion_conflict is DeletionConflictResolution.RESTORE_RECORDS:
            if errors:
                return RecordDecision(Action.FAIL, message=" ".join(errors))
            return RecordDecision(Action.RESTORE, changes=_with_insert_defaults(mapping, direction, values))
        if mapping.deletion_conflict is DeletionConflictResolution.REMOVE_COUPLING:
            return RecordDecision(Action.UNCOUPLE, message="The coupled record was deleted; the coupling was removed.")
        return RecordDecision(
            Action.FAIL,
            message=(
                f"The {mapping.name} record {source.id} cannot be updated because it is coupled to a deleted record."
            ),
        )

    # 4. Not coupled.
    if coupling is None:
        if mapping.sync_only_coupled and not options.create_uncoupled:
            return RecordDecision(Action.IGNORE)
        if errors:
            return RecordDecision(Action.FAIL, message=" ".join(errors))
        return RecordDecision(Action.INSERT, changes=_with_insert_defaults(mapping, direction, values))

    assert destination is not None
    # 5. Change detection from the coupling's stored timestamps.
    stored_source, stored_destination = _stored_timestamps(coupling, direction)
    source_version, destination_version = _stored_versions(coupling, direction)
    failed_before = _last_result(coupling, direction) == FAILURE
    source_changed = failed_before or _changed(source.modified_at, stored_source, source.version, source_version)
    if not source_changed and not options.force:
        return RecordDecision(Action.UNCHANGED)
    # Both sides changed only against a previous sync: a pair coupled by hand or by match has no
    # baseline on the destination side, and is force-modified from the source (as the built-in
    # does with an auto-matched record) rather than held for a merge or a conflict.
    both_modified = (
        mapping.direction is SyncDirection.BIDIRECTIONAL
        and (stored_destination is not None or destination_version is not None)
        and _changed(destination.modified_at, stored_destination, destination.version, destination_version)
    )
    if errors:
        return RecordDecision(Action.FAIL, message=" ".join(errors), both_modified=both_modified)

    # 6. Only fields whose value differs are written; insert-only fields never on an update.
    insert_only = {f.target_field(direction) for f in mapping.fields_for(direction) if f.insert_only}
    changes = {
        k: v for k, v in values.items() if k not in insert_only and not values_equal(v, destination.values.get(k))
    }

    # 7. Update conflict: both sides changed and a bidirectional field differs.
    if both_modified and not options.force:
        conflicting = [
            f
            for f in mapping.fields_for(direction)
            if f.direction is SyncDirection.BIDIRECTIONAL and f.target_field(direction) in changes
        ]
        if conflicting:
            outcome = _resolve_update_conflict(mapping, direction, conflicting, changes)
            if outcome is not None:
                return outcome

    # 8./9.
    if not changes:
        return RecordDecision(Action.UNCHANGED, both_modified=both_modified)
    return RecordDecision(Action.MODIFY, changes=changes, both_modified=both_modified)


def _resolve_update_conflict(
    mapping: TableMapping, direction: SyncDirection, conflicting: list[FieldMapping], changes: Mapping[str, Any]
) -> RecordDecision | None:
    winner = {
        UpdateConflictResolution.SEND_UPDATE_TO_DATAVERSE: SyncDirection.TO_DATAVERSE,
        UpdateConflictResolution.GET_UPDATE_FROM_DATAVERSE: SyncDirection.FROM_DATAVERSE,
    }.get(mapping.update_conflict)
    if winner is direction:
        return None  # this pass wins: proceed and overwrite
    first = conflicting[0]
    if winner is not None:
        kept = "Dataverse" if winner is SyncDirection.FROM_DATAVERSE else "Business Central"
        return RecordDecision(
            Action.SKIP, message=f"Both sides changed; {mapping.name} keeps the {kept} values.", both_modified=True
        )
    return RecordDecision(
        Action.FAIL,
        message=(
            f"Cannot update a record in {mapping.name}. The mapping between the {first.bc_field} field in Business "
            f"Central and the {first.dataverse_field} field in Dataverse is bi-directional, and one or both values "
            "have changed since the last synchronization."
        ),
        both_modified=True,
    )


def _with_insert_defaults(mapping: TableMapping, direction: SyncDirection, values: dict[str, Any]) -> dict[str, Any]:
    defaults = (
        mapping.dataverse_insert_defaults if direction is SyncDirection.TO_DATAVERSE else mapping.bc_insert_defaults
    )
    return {**dict(defaults), **values}


def coupling_after_success(
    coupling: Coupling,
    direction: SyncDirection,
    *,
    source_modified_at: datetime | None,
    destination_modified_at: datetime | None,
    both_modified: bool,
    job_id: str,
    now: datetime,
    written: bool = True,
    source_version: int | None = None,
    destination_version: int | None = None,
) -> Coupling:
    """The coupling after a successful write (``written``) or an unchanged record in a pass.

    ``source_version`` / ``destination_version``: the Dataverse row's ``versionnumber`` on that
    side (read, or after the write), stored like the timestamps and nudged back by one with them.

    When both sides had changed, the destination's stored timestamp is set a little earlier
    than its new value so that the other pass sees the record as changed once more and the
    merge completes (behaviour reference §2.5 step 10: 999 ms for Dataverse, 10 ms for BC).

    For an unchanged record only the source side's timestamp moves: the destination was not
    written, so a change someone made there since the last sync must still look like one to the
    other pass (storing its new time here would hide it for good). Nor do its result, sync time
    and job move, unless a failure toward that side is cleared: an unchanged record re-read by a
    second full sync or a watermark's overlap then leaves its coupling as it was, unwritten.
    """
    to_dataverse = direction is SyncDirection.TO_DATAVERSE
    result_field = "last_result_to_dataverse" if to_dataverse else "last_result_to_bc"
    # A Sales pass has now read the row; a BC pass that overwrote a Sales row changed on both
    # sides leaves it for the Sales pass to read back, whoever modified it last.
    recheck = (coupling.recheck_in_sales or (both_modified and written)) if to_dataverse else False
    if to_dataverse:
        written_version = destination_version if written else None
        version = (
            written_version - 1 if both_modified and written_version is not None else written_version
        ) or coupling.dataverse_version
    else:
        version = source_version if source_version is not None else coupling.dataverse_version
    if not written:
        source_field = "bc_modified_at" if to_dataverse else "dataverse_modified_at"
        moved = source_modified_at or getattr(coupling, source_field)
        if getattr(coupling, result_field) != FAILURE and not coupling.last_error:
            return coupling.with_changes(
                **{source_field: moved, "recheck_in_sales": recheck, "dataverse_version": version}
            )
        destination_modified_at = None
    # The destination side is nudged back when both sides changed: 999 ms on Dataverse (its
    # modifiedon has whole seconds), 10 ms on BC.
    nudge = timedelta(milliseconds=999 if to_dataverse else 10)
    destination_at = (
        destination_modified_at - nudge if both_modified and destination_modified_at else destination_modified_at
    )
    source_field, destination_field = (
        ("bc_modified_at", "dataverse_modified_at") if to_dataverse else ("dataverse_modified_at", "bc_modified_at")
    )
    changes: dict[str, Any] = {
        source_field: source_modified_at or getattr(coupling, source_field),
        destination_field: destination_at or getattr(coupling, destination_field),
        result_field: SUCCESS,
        "last_synced_at": now,
        "last_job_id": job_id,
        "last_error": None,
        "consecutive_failures": 0,
        "recheck_in_sales": recheck,
        "dataverse_version": version,
    }
    return coupling.with_changes(**changes)


def coupling_after_failure(
    coupling: Coupling, direction: SyncDirection, *, message: str, job_id: str, now: datetime
) -> Coupling:
    """The coupling after a failed record: Failure for that direction, and the skip rule.

    The same error text twice in a row for the same direction marks the record Skipped, so it
    stops being retried every run until an administrator restores it (§2.6).
    """
    previous = _last_result(coupling, direction)
    same_again = previous == FAILURE and coupling.last_error == message
    failures = coupling.consecutive_failures + 1 if previous == FAILURE else 1
    changes: dict[str, Any] = {
        "last_error": message,
        "last_job_id": job_id,
        "last_synced_at": now,
        "consecutive_failures": failures,
        "skipped": coupling.skipped or same_again,
    }
    if direction is SyncDirection.TO_DATAVERSE:
        changes["last_result_to_dataverse"] = FAILURE
    else:
        changes["last_result_to_bc"] = FAILURE
    return replace(coupling, **changes)
