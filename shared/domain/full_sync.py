"""Full synchronization review (behaviour reference §3): recommendations and dependency chaining."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.domain.mapping import TableMapping
from shared.domain.state import JobCounters

__all__ = [
    "FullSyncRun",
    "LineStatus",
    "Recommendation",
    "ReviewLine",
    "RunStatus",
    "SideCounts",
    "recommend",
    "review_lines",
    "startable",
]

OPTION_MAPPINGS = frozenset({"PAYMENT TERMS", "SHIPMENT METHOD", "SHIPPING AGENT"})
UNIT_MAPPINGS = frozenset({"UNIT OF MEASURE", "UNIT GROUP", "ITEM UOM", "RESOURCE UOM"})


class Recommendation(enum.StrEnum):
    """What the review proposes for a mapping."""

    FULL_SYNCHRONIZATION = "Full Synchronization"
    COUPLE_RECORDS = "Couple Records"
    NO_RECORDS_FOUND = "No Records Found"


class LineStatus(enum.StrEnum):
    """Where a review line is."""

    WAITING = "Waiting"  # dependencies not finished yet
    IN_PROCESS = "In Process"
    FINISHED = "Finished"
    ERROR = "Error"
    NOTHING_TO_DO = "Nothing To Do"  # No Records Found


@dataclass(frozen=True)
class SideCounts:
    """How many records each side has in the mapping's filters (enough to recommend)."""

    bc: int
    dataverse: int
    # CURRENCY only: Dataverse holds just the base currency (one row, exchange rate 1).
    dataverse_only_base_currency: bool = False


@dataclass(frozen=True)
class ReviewLine:
    """One mapping's line in a full synchronization run.

    A line's work goes in steps, one queue message each: a step that runs out of time stores
    where it stopped (``phase``: the pass, ``resume_link``: the source's next page) and queues
    step ``step`` + 1, which continues from there.
    """

    mapping: str
    recommendation: Recommendation
    direction: str
    dependencies: tuple[str, ...]
    status: LineStatus = LineStatus.WAITING
    to_dataverse: JobCounters = field(default_factory=JobCounters)
    from_dataverse: JobCounters = field(default_factory=JobCounters)
    message: str = ""
    to_dataverse_job_id: str | None = None
    from_dataverse_job_id: str | None = None
    coupling_job_id: str | None = None
    step: int = 0
    phase: str | None = None
    resume_link: str | None = None
    passes_started_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)


class RunStatus(enum.StrEnum):
    """Where a full synchronization run is."""

    RUNNING = "Running"
    FINISHED = "Finished"


@dataclass(frozen=True)
class FullSyncRun:
    """One full synchronization: when it started and whether it is done."""

    run_id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None


def recommend(mapping_name: str, counts: SideCounts) -> Recommendation:
    """The built-in's GetInitialSynchRecommendation rules (§3.3)."""
    if mapping_name == "SALESPEOPLE":
        return Recommendation.FULL_SYNCHRONIZATION
    if mapping_name == "CURRENCY":
        if counts.bc == 0 and counts.dataverse == 0:
            return Recommendation.NO_RECORDS_FOUND
        return (
            Recommendation.FULL_SYNCHRONIZATION
            if counts.dataverse_only_base_currency or counts.dataverse == 0
            else Recommendation.COUPLE_RECORDS
        )
    if mapping_name in OPTION_MAPPINGS:
        return Recommendation.NO_RECORDS_FOUND if counts.bc == 0 else Recommendation.COUPLE_RECORDS
    dataverse = counts.dataverse
    if mapping_name in UNIT_MAPPINGS and dataverse <= 1:
        dataverse = 0  # the "Default Unit" group every environment has does not count
    if counts.bc == 0 and dataverse == 0:
        return Recommendation.NO_RECORDS_FOUND
    if counts.bc > 0 and dataverse > 0:
        return Recommendation.COUPLE_RECORDS
    return Recommendation.FULL_SYNCHRONIZATION


def review_lines(mappings: Sequence[TableMapping], counts: Mapping[str, SideCounts]) -> list[ReviewLine]:
    """A line per mapping, in dependency order, with recommendation and initial status."""
    names = {m.name for m in mappings}
    lines = []
    for mapping in dependency_order(mappings):
        recommendation = recommend(mapping.name, counts[mapping.name])
        lines.append(
            ReviewLine(
                mapping=mapping.name,
                recommendation=recommendation,
                direction=mapping.direction.value,
                # Dependencies outside this run cannot hold it up.
                dependencies=tuple(d for d in mapping.dependencies if d in names),
                status=LineStatus.NOTHING_TO_DO
                if recommendation is Recommendation.NO_RECORDS_FOUND
                else LineStatus.WAITING,
            )
        )
    return lines


def dependency_order(mappings: Iterable[TableMapping]) -> list[TableMapping]:
    """Mappings with every dependency before its dependents; ties keep the given order.

    Raises:
        ValueError: the dependencies form a cycle (a configuration error, named).
    """
    pending = list(mappings)
    names = {m.name for m in pending}
    done: set[str] = set()
    ordered: list[TableMapping] = []
    while pending:
        ready = [m for m in pending if all(d in done or d not in names for d in m.dependencies)]
        if not ready:
            raise ValueError("mapping dependencies form a cycle: " + ", ".join(m.name for m in pending))
        for mapping in ready:
            ordered.append(mapping)
            done.add(mapping.name)
            pending.remove(mapping)
    return ordered


def startable(lines: Sequence[ReviewLine]) -> list[str]:
    """Waiting lines whose every dependency is Finished or had nothing to do (§3.4)."""
    satisfied = {line.mapping for line in lines if line.status in {LineStatus.FINISHED, LineStatus.NOTHING_TO_DO}}
    return [
        line.mapping
        for line in lines
        if line.status is LineStatus.WAITING and all(d in satisfied for d in line.dependencies)
    ]


def run_finished(lines: Sequence[ReviewLine]) -> bool:
    """No line can still make progress: everything finished, errored, or blocked behind an error."""
    if any(line.status is LineStatus.IN_PROCESS for line in lines):
        return False
    return not startable(lines)
