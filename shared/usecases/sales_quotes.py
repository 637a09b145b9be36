"""Activated Sales quotes become BC sales quotes; revisions replace them after archiving; won quotes once.

Behaviour reference §5, over BC API v2.0 (gaps in ``docs/orders-and-quotes.md``):

- an Active quote (``statecode`` 1) not converted yet: revision 0, or a revision whose earlier
  revisions were never coupled → a new BC quote (created like an order: ledger claim, creation
  marker, lines in one ``$batch``, final header), coupled under ``SALESQUOTE-QUOTE``;
- a revision (``revisionnumber`` > 0) whose Revised predecessor (same ``quotenumber``, Closed /
  Revised) is coupled to a BC quote → that BC quote's header and lines are **archived** in our
  ``QuoteArchive`` table (BC API v2.0 has no quote archive), the old coupling removed, its lines
  deleted and rebuilt from the revision, the header rewritten, and the BC quote coupled to the
  revision: the BC quote number stays, each version is in the archive;
- a Won quote (``statecode`` 2): its BC quote is made sure of, then, once (a ``quote-won`` ledger
  row is the built-in's "won marker"): the Sales order made from it is converted when it is
  Submitted, and the BC quote is archived ("won"); while no order is submitted yet nothing else
  happens (BC API v2.0 cannot release a quote), and the order's own conversion follows later.

Draft and Closed quotes are never processed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shared.domain.conversion_ledger import ConversionEntry, ConversionState
from shared.domain.sales_documents import (
    MAPPING_SALES_ORDER,
    MAPPING_SALES_QUOTE,
    DocumentKind,
    DocumentPlan,
    DocumentRequest,
    creation_marker,
    plan_document,
)
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError
from shared.odata import guid_literal, string_literal
from shared.ports import RecordChange
from shared.usecases.sales_orders import (
    SUBMITTED,
    Claim,
    DocumentPorts,
    claim,
    convert_sales_order,
    couple_document,
    create_header,
    create_missing_lines,
    finish_header,
    read_document,
    read_lines,
    resolve,
    store_error,
)

__all__ = ["QuoteArchive", "QuoteResult", "handle_quote_request", "poll_quotes", "process_quote", "quote_archive_of"]

_log = logging.getLogger(__name__)

DRAFT, ACTIVE, WON, CLOSED = 0, 1, 2, 3
REVISED = 7  # quote statuscode under Closed
WON_MARKER = "quote-won"
_STEP_ARCHIVED = "archived"
_STEP_CLEARED = "cleared"

_QUOTE_COLUMNS = (
    "name",
    "quotenumber",
    "revisionnumber",
    "statecode",
    "statuscode",
    "customerid",
    "transactioncurrencyid",
    "effectiveto",
    "requestdeliveryby",
    "paymenttermscode",
    "freighttermscode",
    "discountamount",
    "discountpercentage",
    "freightamount",
    "totallineitemamount",
    "totalamountlessfreight",
    *(f"{side}_{part}" for side in ("billto", "shipto") for part in ("line1", "line2", "city", "country",
                                                                    "stateorprovince", "postalcode")),
)  # fmt: skip


class QuoteArchive(Protocol):
    """Archived BC quote versions (``shared.adapters.tables.conversion_ledger.TableQuoteArchive``)."""

    def add(self, quote_number: str, version: int, entry: dict[str, Any]) -> None:
        """Store a version (idempotent per version)."""
        ...

    def list_versions(self, quote_number: str) -> list[dict[str, Any]]:
        """Archived versions, oldest first."""
        ...


@dataclass(frozen=True)
class QuoteResult:
    """What processing a quote did."""

    dataverse_id: str
    quote_number: str
    revision: int
    bc_id: str
    bc_number: str
    action: str  # created | replaced | unchanged | won | wonWaitingForOrder
    changed: bool
    order_bc_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """As the HTTP answer shows it."""
        return {
            "dataverseId": self.dataverse_id,
            "quoteNumber": self.quote_number,
            "revision": self.revision,
            "bcId": self.bc_id,
            "bcNumber": self.bc_number,
            "action": self.action,
            "orderBcId": self.order_bc_id,
        }


def _where(quote_id: str) -> tuple[str, str]:
    return f"dataverse:quotes({quote_id})", "bc:salesQuotes"


def process_quote(ports: DocumentPorts, archive: QuoteArchive, quote_id: str, *, manual: bool = True) -> QuoteResult:
    """Process one Sales quote in BC by its state (module docstring).

    Raises:
        PermanentError / ConfigurationError: a precondition failed (stored once per cause; a
            Draft or Closed quote only when ``manual``).
        RetriableError: for a retry; nothing is lost.
    """
    kind = DocumentKind.QUOTE
    quote_id = guid_literal(quote_id)
    row = read_document(ports.dataverse, kind, quote_id, _QUOTE_COLUMNS)
    state = row.get("statecode")
    if state not in (ACTIVE, WON):
        error = PermanentError(
            f"The quote {row.get('quotenumber')} (revision {row.get('revisionnumber') or 0}) cannot be processed in "
            "Business Central: only Active and Won quotes are. Activate it in Dynamics 365 Sales.",
            code="QuoteNotActive",
        )
        if manual:
            source, destination = _where(quote_id)
            store_error(ports, error, mapping=MAPPING_SALES_QUOTE, source=source, destination=destination)
        raise error
    result = _ensure_bc_quote(ports, archive, row, quote_id)
    if state == WON:
        return _handle_won(ports, archive, row, quote_id, result)
    return result


def _ensure_bc_quote(ports: DocumentPorts, archive: QuoteArchive, row: Mapping[str, Any], quote_id: str) -> QuoteResult:
    kind = DocumentKind.QUOTE
    number = str(row.get("quotenumber") or "")
    revision = int(row.get("revisionnumber") or 0)
    source, destination = _where(quote_id)
    held = claim(ports, kind.value, quote_id, uuid.uuid4().hex, number)
    if isinstance(held, ConversionEntry):
        return QuoteResult(quote_id, number, revision, held.bc_id or "", held.bc_number, "unchanged", False)
    try:
        lines = read_lines(ports.dataverse, kind, quote_id)
        plan = plan_document(kind, row, lines, resolve(ports, kind, row, lines))
        previous = _coupled_predecessor(ports, number, quote_id) if revision > 0 else None
        if previous is not None and not held.entry.step and not ports.bc.get_records(kind.bc_entity_set, [previous[2]]):
            # The earlier revision's BC quote was deleted in BC: as if none were coupled, a new one.
            ports.couplings.uncouple(MAPPING_SALES_QUOTE, previous[2])
            previous = None
        if previous is not None or held.entry.step:
            action = "replaced"
            bc_id = _replace(ports, archive, held, plan=plan, row=row, previous=previous)
        else:
            action = "created"
            bc_id = _create(ports, held, plan, quote_id)
        create_missing_lines(ports, kind, bc_id, plan)
        finished = finish_header(ports, kind, bc_id, plan)
        couple_document(ports.couplings, MAPPING_SALES_QUOTE, bc_id, quote_id)
        bc_number = str(finished.get("number") or held.entry.bc_number)
        held.save(
            state=ConversionState.CONVERTED, holder="", claimed_until=None, bc_number=bc_number, step="",
            last_error="", last_error_code="",
        )  # fmt: skip
    except (PermanentError, ConfigurationError) as error:
        held.fail(error, mapping=MAPPING_SALES_QUOTE, source=source, destination=destination)
        raise
    except SyncError as error:
        held.release(error)
        raise
    _log.info("quote %s revision %d → BC quote %s (%s)", number, revision, bc_number, action)
    return QuoteResult(quote_id, number, revision, bc_id, bc_number, action, True)


def _create(ports: DocumentPorts, held: Claim, plan: DocumentPlan, quote_id: str) -> str:
    kind = DocumentKind.QUOTE
    if held.entry.bc_id is not None:
        return held.entry.bc_id
    existing = ports.couplings.get_by_dataverse_id(MAPPING_SALES_QUOTE, quote_id)
    if existing is not None:
        held.save(bc_id=existing.bc_id)
        return existing.bc_id
    header = create_header(ports, kind, plan, creation_marker(kind, quote_id))
    bc_id = str(header["id"])
    held.save(bc_id=bc_id, bc_number=str(header.get("number") or ""))
    return bc_id


def _coupled_predecessor(ports: DocumentPorts, quote_number: str, quote_id: str) -> tuple[str, int, str] | None:
    """(Dataverse id, revision, BC quote id) of a Revised earlier revision that is coupled, if any."""
    filter_ = f"quotenumber eq {string_literal(quote_number)} and statecode eq {CLOSED} and statuscode eq {REVISED}"
    rows = [r for page in ports.dataverse.list_rows("quotes", filter=filter_, select=["revisionnumber"]) for r in page]
    for row in sorted(rows, key=lambda r: int(r.get("revisionnumber") or 0), reverse=True):
        old_id = str(row["quoteid"]).lower()
        if old_id == quote_id:
            continue
        coupling = ports.couplings.get_by_dataverse_id(MAPPING_SALES_QUOTE, old_id)
        if coupling is not None:
            return old_id, int(row.get("revisionnumber") or 0), coupling.bc_id
    return None


def _bc_quote_content(ports: DocumentPorts, bc_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = DocumentKind.QUOTE
    header = ports.bc.get_records(kind.bc_entity_set, [bc_id]).get(bc_id)
    if header is None:
        raise PermanentError(
            f"The BC sales quote {bc_id} coupled to an earlier revision of this quote was deleted in Business "
            "Central while it was being archived.",
            code="NotFound",
        )
    lines = ports.bc.list_related(kind.bc_entity_set, bc_id, kind.bc_line_set)
    strip = ("@odata.etag", "@odata.context")
    return {k: v for k, v in header.items() if k not in strip}, [
        {k: v for k, v in line.items() if k not in strip} for line in sorted(lines, key=lambda r: r.get("sequence", 0))
    ]


def archive_bc_quote(
    ports: DocumentPorts,
    archive: QuoteArchive,
    *,
    quote_number: str,
    revision: int,
    dataverse_id: str,
    bc_id: str,
    reason: str,
) -> None:
    """Put the BC quote's current header and lines into the archive as version ``revision``."""
    header, lines = _bc_quote_content(ports, bc_id)
    archive.add(
        quote_number,
        revision,
        {
            "quoteNumber": quote_number,
            "revisionNumber": revision,
            "dataverseQuoteId": dataverse_id,
            "bcQuoteId": bc_id,
            "bcQuoteNumber": header.get("number", ""),
            "reason": reason,
            "archivedAt": ports.clock.now().isoformat(),
            "header": header,
            "lines": lines,
        },
    )


def _replace(
    ports: DocumentPorts,
    archive: QuoteArchive,
    held: Claim,
    *,
    plan: DocumentPlan,
    row: Mapping[str, Any],
    previous: tuple[str, int, str] | None,
) -> str:
    """Archive the predecessor's BC quote, uncouple it, clear its lines; returns the BC quote id.

    Each step is recorded in the ledger row before the next, so a retry neither archives a
    half-cleared quote nor clears it twice.
    """
    kind = DocumentKind.QUOTE
    number = str(row.get("quotenumber") or "")
    if not held.entry.step:
        assert previous is not None
        old_id, old_revision, bc_id = previous
        held.save(bc_id=bc_id)
        archive_bc_quote(
            ports, archive, quote_number=number, revision=old_revision, dataverse_id=old_id, bc_id=bc_id,
            reason="revised",
        )  # fmt: skip
        held.save(step=_STEP_ARCHIVED)
    bc_id = held.entry.bc_id or ""
    if held.entry.step == _STEP_ARCHIVED:
        coupling = ports.couplings.get_by_bc_id(MAPPING_SALES_QUOTE, bc_id)
        if coupling is not None and coupling.dataverse_id != held.entry.dataverse_id:
            ports.couplings.uncouple(MAPPING_SALES_QUOTE, bc_id)
        old_lines = [r["id"] for r in ports.bc.list_related(kind.bc_entity_set, bc_id, kind.bc_line_set)]
        if old_lines:
            for outcome in ports.bc.delete_records(kind.bc_line_set, old_lines):
                if not outcome.ok:
                    raise outcome.error or RetriableError("deleting the old quote lines failed")
        # The header takes the revision's values (the marker stays out: the quote is known by id).
        values = {k: v for k, v in plan.header.items() if k not in ("externalDocumentNumber",)}
        outcome = ports.bc.update_records(kind.bc_entity_set, [RecordChange(bc_id, values)])[0]
        if not outcome.ok:
            raise outcome.error or RetriableError("updating the BC quote header failed")
        held.save(step=_STEP_CLEARED)
    return bc_id


def _handle_won(
    ports: DocumentPorts, archive: QuoteArchive, row: Mapping[str, Any], quote_id: str, quote: QuoteResult
) -> QuoteResult:
    """§5.3, once per won quote: convert its submitted order, archive the BC quote."""
    source, destination = _where(quote_id)
    held = claim(ports, WON_MARKER, quote_id, uuid.uuid4().hex, quote.quote_number)
    if isinstance(held, ConversionEntry):
        return QuoteResult(
            quote_id, quote.quote_number, quote.revision, quote.bc_id, quote.bc_number, "won", False, held.bc_id or ""
        )
    try:
        filter_ = f"_quoteid_value eq {guid_literal(quote_id)}"
        orders = [
            r
            for page in ports.dataverse.list_rows("salesorders", filter=filter_, select=["ordernumber", "statecode"])
            for r in page
        ]
        if not orders:
            raise PermanentError(
                f"Unable to find Dynamics 365 Sales order that corresponds to the won quote {quote.quote_number}. "
                "Create the order from the quote in Dynamics 365 Sales.",
                code="WonQuoteWithoutOrder",
            )
        order = orders[0]
        order_id = str(order["salesorderid"]).lower()
        coupled = ports.couplings.get_by_dataverse_id(MAPPING_SALES_ORDER, order_id)
        if coupled is None and order.get("statecode") != SUBMITTED:
            # The built-in releases the BC quote here; BC API v2.0 has no release for quotes. The
            # order's own conversion (push, poll or button) follows once it is submitted.
            held.save(state=ConversionState.FAILED, holder="", claimed_until=None, last_error="", last_error_code="")
            return QuoteResult(
                quote_id, quote.quote_number, quote.revision, quote.bc_id, quote.bc_number, "wonWaitingForOrder", False
            )
        order_bc_id = coupled.bc_id if coupled else convert_sales_order(ports, order_id).bc_id
        archive_bc_quote(
            ports, archive, quote_number=quote.quote_number, revision=quote.revision, dataverse_id=quote_id,
            bc_id=quote.bc_id, reason="won",
        )  # fmt: skip
        held.save(state=ConversionState.CONVERTED, holder="", claimed_until=None, bc_id=order_bc_id)
    except (PermanentError, ConfigurationError) as error:
        held.fail(error, mapping=MAPPING_SALES_QUOTE, source=source, destination=destination)
        raise
    except SyncError as error:
        held.release(error)
        raise
    return QuoteResult(
        quote_id, quote.quote_number, quote.revision, quote.bc_id, quote.bc_number, "won", True, order_bc_id
    )


def handle_quote_request(ports: DocumentPorts, archive: QuoteArchive, request: DocumentRequest) -> QuoteResult | None:
    """One ``quotes`` message; failed preconditions are stored, not raised (the poll retries them).

    Raises:
        RetriableError, ConfigurationError: for redelivery.
    """
    if request.source == "push":
        if not ports.settings.auto_process_quotes:
            return None
        own = ports.application_user_id()
        if own and request.initiator == own.lower():
            return None
    try:
        return process_quote(ports, archive, request.dataverse_id, manual=request.source == "manual")
    except (PermanentError, ConfigurationError) as error:
        if isinstance(error, ConfigurationError) and error.code != "WriteInProductNotConfigured":
            raise
        _log.warning("quote %s not processed: %s", request.dataverse_id, error.message)
        return None


def poll_quotes(ports: DocumentPorts, queue_name: str, *, limit: int = 500) -> int:
    """The safety net: Active quotes not converted yet and Won quotes not handled yet go on the queue."""
    if not ports.settings.auto_process_quotes or ports.queue is None:
        return 0
    queued = 0
    for state, kind in ((ACTIVE, DocumentKind.QUOTE.value), (WON, WON_MARKER)):
        filter_ = f"statecode eq {state}"
        for page in ports.dataverse.list_rows("quotes", filter=filter_, select=["quotenumber"]):
            for row in page:
                quote_id = str(row["quoteid"]).lower()
                entry = ports.ledger.get(kind, quote_id)
                if entry is not None and entry.state is ConversionState.CONVERTED:
                    continue
                if queued >= limit:
                    return queued
                ports.queue.send(queue_name, DocumentRequest(quote_id, "poll").to_json())
                queued += 1
    return queued


def quote_archive_of(ports: DocumentPorts, archive: QuoteArchive, quote_id: str) -> dict[str, Any]:
    """The archive of a quote's number (every revision shares it)."""
    row = read_document(ports.dataverse, DocumentKind.QUOTE, guid_literal(quote_id), ("quotenumber", "revisionnumber"))
    number = str(row.get("quotenumber") or "")
    revision = int(row.get("revisionnumber") or 0)
    return {"quoteNumber": number, "revision": revision, "versions": archive.list_versions(number)}
