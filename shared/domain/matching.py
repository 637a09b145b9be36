"""Match-based coupling (behaviour reference §2.10), the pure part: criteria and verdicts."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from shared.domain.mapping import FieldMapping, TableMapping
from shared.domain.record_sync import Transform, source_value
from shared.domain.state import SyncDirection
from shared.errors import PermanentError

__all__ = ["MatchCriterion", "MatchOutcome", "MatchVerdict", "classify_candidates", "match_criteria", "match_groups"]


@dataclass(frozen=True)
class MatchCriterion:
    """One ``dataverse_field = value`` condition of a match query."""

    dataverse_field: str
    value: Any
    case_sensitive: bool


class MatchVerdict(enum.StrEnum):
    """What one priority group's query found."""

    COUPLE = "Couple"
    NO_MATCH = "NoMatch"
    MULTIPLE_MATCHES = "MultipleMatches"
    ALREADY_COUPLED = "AlreadyCoupled"
    NO_CRITERIA = "NoCriteria"


@dataclass(frozen=True)
class MatchOutcome:
    """The verdict and, for COUPLE, the Dataverse row to couple."""

    verdict: MatchVerdict
    dataverse_id: str | None = None


def match_groups(mapping: TableMapping) -> list[tuple[FieldMapping, ...]]:
    """The mapping's match fields grouped by priority, lowest (most important) first.

    Raises:
        PermanentError: no field is marked for matching (the built-in's message).
    """
    fields = sorted(mapping.match_fields(), key=lambda f: f.match.priority if f.match else 0)
    if not fields:
        raise PermanentError(
            f"You must specify which fields on the table mapping '{mapping.name}' should be used for "
            "match-based coupling.",
            code="NoMatchCriteria",
        )
    return [tuple(group) for _, group in groupby(fields, key=lambda f: f.match.priority if f.match else 0)]


def match_criteria(
    group: Sequence[FieldMapping],
    bc_values: Mapping[str, Any],
    transforms: Mapping[str, Transform] | None = None,
) -> list[MatchCriterion]:
    """The conditions one BC record gives a priority group; blank text values are left out.

    Values are compared as they would be written to Dataverse, i.e. after the field's transform
    (a unit code ``PCS`` matches the unit group ``NAV PCS``).
    """
    criteria = []
    for field in group:
        if field.bc_field is None or field.dataverse_field is None:
            continue
        value = source_value(field, SyncDirection.TO_DATAVERSE, bc_values, transforms or {})
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        case_sensitive = bool(field.match and field.match.case_sensitive)
        criteria.append(MatchCriterion(field.dataverse_field, value, case_sensitive))
    return criteria


def classify_candidates(
    criteria: Sequence[MatchCriterion],
    candidates: Sequence[Mapping[str, Any]],
    *,
    key: str,
    coupled_dataverse_ids: Collection[str],
) -> MatchOutcome:
    """Judge the rows a group's query returned: couple only on exactly one uncoupled match.

    The query itself compares case-insensitively (Dataverse's default collation), so
    case-sensitive criteria are re-checked here.
    """
    if not criteria:
        return MatchOutcome(MatchVerdict.NO_CRITERIA)
    exact = [row for row in candidates if all(_matches(c, row.get(c.dataverse_field)) for c in criteria)]
    if not exact:
        return MatchOutcome(MatchVerdict.NO_MATCH)
    if len(exact) > 1:
        return MatchOutcome(MatchVerdict.MULTIPLE_MATCHES)
    row_id = str(exact[0][key])
    if row_id.lower() in {i.lower() for i in coupled_dataverse_ids}:
        return MatchOutcome(MatchVerdict.ALREADY_COUPLED)
    return MatchOutcome(MatchVerdict.COUPLE, row_id)


def _matches(criterion: MatchCriterion, actual: Any) -> bool:
    if isinstance(criterion.value, str) and isinstance(actual, str):
        if criterion.case_sensitive:
            return criterion.value.strip() == actual.strip()
        return criterion.value.strip().casefold() == actual.strip().casefold()
    return bool(criterion.value == actual)
