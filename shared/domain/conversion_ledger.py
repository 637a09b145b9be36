"""The conversion ledger's rows and the decisions over them (pure).

One row per converted Dataverse document (per kind: ``order``, ``quote``, ``quote-won``): who is
converting it now and until when (a claim that expires, so a crashed worker's row is taken over),
the BC document it became once known, and the last precondition error. Every change of a row is
conditional on the ETag read, so of two workers exactly one holds the claim.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

__all__ = ["CLAIM_PERIOD", "ClaimDecision", "ConversionEntry", "ConversionState", "decide_claim"]

# Long against the seconds a conversion takes, short against the poll: a crashed worker's order
# is taken over by the next delivery or poll after this.
CLAIM_PERIOD = timedelta(minutes=2)


class ConversionState(enum.StrEnum):
    """Where a document's conversion is."""

    CONVERTING = "Converting"  # claimed by ``holder`` until ``claimed_until``
    FAILED = "Failed"  # a precondition failed; retried when the document comes round again
    CONVERTED = "Converted"  # the BC document exists, is coupled and Sales knows


@dataclass(frozen=True)
class ConversionEntry:
    """One ledger row."""

    kind: str
    dataverse_id: str
    state: ConversionState
    document_number: str = ""  # the Sales order / quote number, for people reading the ledger
    holder: str = ""
    claimed_until: datetime | None = None
    bc_id: str | None = None
    bc_number: str = ""
    step: str = ""  # progress within Converting where a step cannot simply be repeated (quote rebuild)
    last_error: str = ""
    last_error_code: str = ""
    attempts: int = 0
    updated_at: datetime | None = None
    etag: str | None = field(default=None, compare=False)

    def with_changes(self, **changes: object) -> ConversionEntry:
        """A copy with ``changes``, keeping the etag for the conditional write."""
        return replace(self, **changes)  # type: ignore[arg-type]


class ClaimDecision(enum.StrEnum):
    """What a worker may do with a document whose ledger row it read."""

    TAKE = "take"  # nobody works on it: claim it (insert or conditional update)
    DONE = "done"  # already converted: nothing to do
    BUSY = "busy"  # another worker's claim is live: leave it (retry later)


def decide_claim(entry: ConversionEntry | None, holder: str, now: datetime) -> ClaimDecision:
    """Whether ``holder`` may claim the document now."""
    if entry is None:
        return ClaimDecision.TAKE
    if entry.state is ConversionState.CONVERTED:
        return ClaimDecision.DONE
    live = entry.claimed_until is not None and entry.claimed_until > now
    if entry.state is ConversionState.CONVERTING and entry.holder != holder and live:
        return ClaimDecision.BUSY
    return ClaimDecision.TAKE
