"""Submitted Sales orders become BC sales orders, exactly once (capability 8).

``convert_sales_order`` is the one conversion, whatever asked for it (the ``sales-orders`` queue fed
by Dataverse push and by the safety-net poll, or ``POST /api/salesorders/{id}/create-in-bc``):

1. read the order; already converted (ledger) → the BC order it became; not Submitted → error;
2. claim the ledger row (conditional insert, or an update conditional on the ETag read), so of
   two workers exactly one goes on; the other waits for the first one's claim and then finds the
   order converted (``ConversionInProgress``, retriable, only if the first takes too long);
3. look up the customer, currency, items, units and options, and plan the BC document (pure,
   ``shared.domain.sales_documents``); a failed precondition is stored once per cause (ledger
   row + one sync error) and the order is retried when it comes round again;
4. find the BC order by its creation marker, else create the header; the id goes into the ledger
   before anything else happens, so a lost create response is found again, never re-created;
5. create the lines that are missing (by ``sequence``) in one ``$batch``; set the final header
   (External Document No. = Name, invoice discount);
6. couple Sales order ↔ BC order (mapping ``SALESORDER-ORDER``), write ``lastbackofficesubmit``
   back (Active → update → Submitted) and mark the ledger row Converted.

Each step is idempotent given the ledger row, so a crash or a retry anywhere resumes the same BC
order. ``docs/orders-and-quotes.md`` explains the rules and the BC API v2.0 gaps.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.adapters.tables._keys import newest_first_key
from shared.domain.conversion_ledger import (
    CLAIM_PERIOD,
    ClaimDecision,
    ConversionEntry,
    ConversionState,
    decide_claim,
)
from shared.domain.sales_documents import (
    MAPPING_SALES_ORDER,
    DocumentKind,
    DocumentPlan,
    DocumentRequest,
    ProductInfo,
    Resolved,
    UnitInfo,
    creation_marker,
    plan_document,
)
from shared.domain.state import Coupling, SyncErrorRecord
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError
from shared.odata import guid_literal, string_literal
from shared.ports import (
    BusinessCentralPort,
    Clock,
    CouplingStore,
    DataversePort,
    MessageQueue,
    RecordChange,
    SyncErrorStore,
)

__all__ = [
    "BLANK_GUID",
    "ConversionLedger",
    "ConversionResult",
    "DocumentPorts",
    "DocumentSettings",
    "convert_sales_order",
    "handle_order_request",
    "poll_submitted_orders",
]

_log = logging.getLogger(__name__)

BLANK_GUID = "00000000-0000-0000-0000-000000000000"
SUBMITTED = 1
ACTIVE = 0
_ACTIVE_PENDING = 2  # salesorder statuscode "Pending" (Active)
_SUBMITTED_IN_PROGRESS = 3  # salesorder statuscode "In Progress" (Submitted)
_ACCOUNT_CUSTOMER_TYPE = 3
_FIND_AGAIN_WAITS = (0.0, 1.0, 3.0)  # seconds before each search for a create whose answer was lost
_NEVER_SUBMITTED = ("", "1900-01-01")
_BUSY_WAIT_SECONDS = 20.0  # how long a second worker waits for the first one's claim
_BUSY_POLL_SECONDS = 0.5

_ORDER_COLUMNS = (
    "name",
    "ordernumber",
    "statecode",
    "statuscode",
    "customerid",
    "transactioncurrencyid",
    "requestdeliveryby",
    "lastbackofficesubmit",
    "paymenttermscode",
    "freighttermscode",
    "shippingmethodcode",
    "discountamount",
    "discountpercentage",
    "freightamount",
    "totallineitemamount",
    "totalamountlessfreight",
    "quoteid",
    *(f"{side}_{part}" for side in ("billto", "shipto") for part in ("line1", "line2", "city", "country",
                                                                    "stateorprovince", "postalcode")),
)  # fmt: skip
_LINE_COLUMNS = (
    "productid",
    "uomid",
    "isproductoverridden",
    "productdescription",
    "description",
    "quantity",
    "priceperunit",
    "manualdiscountamount",
    "volumediscountamount",
    "sequencenumber",
    "lineitemnumber",
)
_LOOKUP_TARGET = "@Microsoft.Dynamics.CRM.lookuplogicalname"


class BusinessCentralDocuments(BusinessCentralPort, Protocol):
    """The BC port plus a document's lines (``BusinessCentralAdapter`` has both)."""

    def list_related(self, entity_set: str, record_id: str, navigation: str) -> list[dict[str, Any]]:
        """A record's navigation collection, e.g. ``salesOrders(<id>)/salesOrderLines``."""
        ...


class ConversionLedger(Protocol):
    """The conversion ledger (``shared.adapters.tables.conversion_ledger``)."""

    def get(self, kind: str, dataverse_id: str) -> ConversionEntry | None:
        """The row, or ``None``."""
        ...

    def write(self, entry: ConversionEntry) -> ConversionEntry | None:
        """Insert (no etag) or replace conditionally; ``None`` when another worker wrote first."""
        ...


@dataclass(frozen=True)
class DocumentSettings:
    """What the settings say about document conversion."""

    auto_create_orders: bool = False
    auto_process_quotes: bool = False
    write_in_item: str | None = None
    freight_account: str | None = None


@dataclass(frozen=True)
class DocumentPorts:
    """Everything a conversion talks to."""

    bc: BusinessCentralDocuments
    dataverse: DataversePort
    couplings: CouplingStore
    ledger: ConversionLedger
    errors: SyncErrorStore
    clock: Clock
    settings: DocumentSettings
    base_currency_id: Callable[[], str | None]
    application_user_id: Callable[[], str | None]
    queue: MessageQueue | None = None


@dataclass(frozen=True)
class ConversionResult:
    """What a conversion ended with."""

    dataverse_id: str
    document_number: str
    bc_id: str
    bc_number: str
    created: bool  # False: it had been converted before

    def to_json(self) -> dict[str, Any]:
        """As the HTTP answer shows it."""
        return {
            "dataverseId": self.dataverse_id,
            "documentNumber": self.document_number,
            "bcId": self.bc_id,
            "bcNumber": self.bc_number,
            "created": self.created,
        }


# -- reading Dataverse ------------------------------------------------------------------------------
def read_document(
    dataverse: DataversePort, kind: DocumentKind, dataverse_id: str, columns: Sequence[str]
) -> dict[str, Any]:
    """The Dataverse order or quote row.

    Raises:
        PermanentError: ``NotFound`` when it does not exist.
    """
    found = dataverse.get_rows(f"{kind.entity}s", [dataverse_id], select=list(columns)).get(dataverse_id)
    if found is None:
        raise PermanentError(f"There is no Dynamics 365 Sales {kind.caption} with id {dataverse_id}.", code="NotFound")
    return found


def read_lines(dataverse: DataversePort, kind: DocumentKind, dataverse_id: str) -> list[dict[str, Any]]:
    """The document's detail lines."""
    entity_set = "salesorderdetails" if kind is DocumentKind.ORDER else "quotedetails"
    parent = f"_{kind.entity}id_value"
    return [
        row
        for page in dataverse.list_rows(
            entity_set, filter=f"{parent} eq {guid_literal(dataverse_id)}", select=list(_LINE_COLUMNS)
        )
        for row in page
    ]


def _document_name(kind: DocumentKind, row: Mapping[str, Any]) -> str:
    return f"{kind.caption} {row.get(kind.number_attribute) or row.get(f'{kind.entity}id')}"


def resolve_customer(ports: DocumentPorts, kind: DocumentKind, row: Mapping[str, Any]) -> str:
    """The BC customer for the document: the account's coupled customer, or the contact's parent account's.

    Raises:
        PermanentError: no customer; a contact without a parent account; the account is not of
            type Customer or not coupled to a BC customer.
    """
    name = _document_name(kind, row)
    customer = row.get("customerid")
    if not customer:
        raise PermanentError(
            f"There is no potential customer defined on the Dynamics 365 Sales {name}. Set its customer.",
            code="NoCustomer",
        )
    target = str(row.get(f"customerid{_LOOKUP_TARGET}") or "account")
    account_id = str(customer).lower()
    if target == "contact":
        contact = ports.dataverse.get_rows("contacts", [account_id], select=["fullname", "parentcustomerid"])
        found = next(iter(contact.values()), {})
        parent = found.get("parentcustomerid")
        if not parent or str(found.get(f"parentcustomerid{_LOOKUP_TARGET}") or "account") != "account":
            raise PermanentError(
                f"The {name} is created for contact {found.get('fullname') or account_id}, which doesn't correspond "
                "to an account in Dynamics 365 Sales. Set the contact's company (an account) or order for the account.",
                code="ContactWithoutAccount",
            )
        account_id = str(parent).lower()
    accounts = ports.dataverse.get_rows("accounts", [account_id], select=["name", "accountnumber", "customertypecode"])
    account = next(iter(accounts.values()), None)
    label = f"{account.get('name')} ({account.get('accountnumber') or account_id})" if account else account_id
    if account is not None and account.get("customertypecode") not in (None, _ACCOUNT_CUSTOMER_TYPE):
        raise PermanentError(
            f"The {name} cannot be converted: the selected type of the Dynamics 365 Sales account {label} is not "
            "customer. Set its Relationship Type to Customer.",
            code="AccountNotCustomer",
        )
    coupling = ports.couplings.get_by_dataverse_id("CUSTOMER", account_id)
    if coupling is None:
        raise PermanentError(
            f"The {name} cannot be converted: there is no customer coupled to the Dynamics 365 Sales account {label}. "
            "Couple it (CUSTOMER), or create the customer in Business Central.",
            code="CustomerNotCoupled",
        )
    return coupling.bc_id


def _resolve_currency(ports: DocumentPorts, kind: DocumentKind, row: Mapping[str, Any]) -> str | None:
    currency = row.get("transactioncurrencyid")
    if not currency:
        return None  # BC takes the customer's currency
    currency_id = str(currency).lower()
    base = ports.base_currency_id()
    if base is not None and base.lower() == currency_id:
        return BLANK_GUID  # the Dataverse base currency stands for BC's LCY
    coupling = ports.couplings.get_by_dataverse_id("CURRENCY", currency_id)
    if coupling is None:
        raise PermanentError(
            f"The {_document_name(kind, row)} cannot be converted: its currency {currency_id} is not coupled to a "
            "Business Central currency. Couple it (CURRENCY).",
            code="CurrencyNotCoupled",
        )
    return coupling.bc_id


def _resolve_option(
    ports: DocumentPorts, kind: DocumentKind, row: Mapping[str, Any], column: str, mapping: str
) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    coupling = ports.couplings.get_by_dataverse_id(mapping, str(value))
    if coupling is None:
        raise PermanentError(
            f"The {_document_name(kind, row)} cannot be converted: {column} {value} must be coupled to a {mapping} "
            f"record. Run the {mapping} mapping's synchronization or clear the field in Dynamics 365 Sales.",
            code="OptionNotCoupled",
        )
    return coupling.bc_id


def _resolve_products(ports: DocumentPorts, lines: Sequence[Mapping[str, Any]]) -> dict[str, ProductInfo]:
    ids = sorted({str(line["productid"]).lower() for line in lines if line.get("productid")})
    if not ids:
        return {}
    rows = ports.dataverse.get_rows("products", ids, select=["name", "productnumber", "producttypecode", "statecode"])
    couplings = ports.couplings.get_many_by_dataverse_ids("ITEM-PRODUCT", ids)
    products = {}
    for product_id, row in rows.items():
        key = product_id.lower()
        coupled = couplings.get(key) or couplings.get(product_id)
        products[key] = ProductInfo(
            product_id=key,
            name=str(row.get("name") or row.get("productnumber") or key),
            type_code=row.get("producttypecode"),
            state_code=row.get("statecode"),
            item_id=coupled.bc_id if coupled else None,
        )
    return products


def _resolve_units(ports: DocumentPorts, lines: Sequence[Mapping[str, Any]]) -> dict[str, UnitInfo]:
    ids = sorted({str(line["uomid"]).lower() for line in lines if line.get("uomid")})
    if not ids:
        return {}
    uoms = ports.dataverse.get_rows("uoms", ids, select=["name", "uomscheduleid", "isschedulebaseuom"])
    group_ids = sorted({str(u["uomscheduleid"]).lower() for u in uoms.values() if u.get("uomscheduleid")})
    groups = ports.dataverse.get_rows("uomschedules", group_ids, select=["name"]) if group_ids else {}
    couplings = ports.couplings.get_many_by_dataverse_ids("UNIT OF MEASURE", group_ids)
    bc_units = ports.bc.get_records("unitsOfMeasure", [c.bc_id for c in couplings.values()], select=["code"])
    units = {}
    for uom_id, uom in uoms.items():
        group_id = str(uom.get("uomscheduleid") or "").lower()
        coupled = couplings.get(group_id)
        bc_unit = bc_units.get(coupled.bc_id) if coupled else None
        units[uom_id.lower()] = UnitInfo(
            uom_id=uom_id.lower(),
            name=str(uom.get("name") or uom_id),
            is_base=bool(uom.get("isschedulebaseuom")),
            group_name=str((groups.get(group_id) or {}).get("name") or group_id),
            bc_unit_code=str(bc_unit["code"]) if bc_unit else None,
        )
    return units


def _check_write_in_item(
    ports: DocumentPorts, kind: DocumentKind, row: Mapping[str, Any], lines: Sequence[Any]
) -> None:
    number = ports.settings.write_in_item
    if not number or all(line.get("productid") for line in lines):
        return
    filter_ = f"number eq {string_literal(number)}"
    if not any(page for page in ports.bc.list_records("items", filter=filter_, select=["number"])):
        raise PermanentError(
            f"The {_document_name(kind, row)} contains a write-in product, and WRITE_IN_PRODUCT_NO names item "
            f"{number}, which does not exist in Business Central. Create the item or correct the setting.",
            code="WriteInItemNotFound",
        )


def resolve(
    ports: DocumentPorts, kind: DocumentKind, row: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]
) -> Resolved:
    """Everything the plan needs from couplings and both APIs.

    Raises:
        PermanentError: a precondition failed (named).
    """
    customer_id = resolve_customer(ports, kind, row)
    _check_write_in_item(ports, kind, row, lines)
    return Resolved(
        customer_id=customer_id,
        currency_id=_resolve_currency(ports, kind, row),
        products=_resolve_products(ports, lines),
        units=_resolve_units(ports, lines),
        payment_terms_id=_resolve_option(ports, kind, row, "paymenttermscode", "PAYMENT TERMS"),
        shipment_method_id=_resolve_option(ports, kind, row, "freighttermscode", "SHIPMENT METHOD"),
        write_in_item=ports.settings.write_in_item,
        freight_account=ports.settings.freight_account,
    )


# -- the ledger -------------------------------------------------------------------------------------
class Claim:
    """A held ledger row; every write goes through it, conditional on the last write's ETag."""

    def __init__(self, ports: DocumentPorts, entry: ConversionEntry, holder: str, *, fresh: bool = False) -> None:
        self._ports = ports
        self.entry = entry
        self.holder = holder
        # The row was inserted by this claim: no earlier attempt can have created anything in BC.
        self.fresh = fresh

    def save(self, **changes: Any) -> ConversionEntry:
        """Write changes; RetriableError ``ClaimLost`` when another worker took the row over."""
        now = self._ports.clock.now()
        wanted = self.entry.with_changes(updated_at=now, **changes)
        if wanted.state is ConversionState.CONVERTING:
            wanted = wanted.with_changes(claimed_until=now + CLAIM_PERIOD)
        written = self._ports.ledger.write(wanted)
        if written is None:
            raise RetriableError(
                f"another worker took over the conversion of {self.entry.kind} {self.entry.dataverse_id}",
                code="ClaimLost",
            )
        self.entry = written
        return written

    def release(self, error: SyncError) -> None:
        """Give the row up after a retriable failure, so the retry need not wait for the claim to expire."""
        if error.code == "ClaimLost":
            return
        try:
            self.save(state=ConversionState.FAILED, holder="", claimed_until=None)
        except SyncError:
            _log.warning("could not release the conversion claim of %s %s", self.entry.kind, self.entry.dataverse_id)

    def fail(self, error: SyncError, *, mapping: str, source: str, destination: str) -> None:
        """Release the row as Failed; store a sync error only when the cause is new (no storm)."""
        new_cause = error.message != self.entry.last_error
        try:
            self.save(
                state=ConversionState.FAILED,
                holder="",
                claimed_until=None,
                last_error=error.message,
                last_error_code=error.code,
                attempts=self.entry.attempts + 1,
            )
        except RetriableError:
            return  # someone else holds it now; their outcome counts
        if new_cause:
            store_error(self._ports, error, mapping=mapping, source=source, destination=destination)


def store_error(ports: DocumentPorts, error: SyncError, *, mapping: str, source: str, destination: str) -> None:
    """One sync error row, visible at ``GET /api/errors``."""
    now = ports.clock.now()
    ports.errors.add(
        SyncErrorRecord(
            error_id=newest_first_key(now, uuid.uuid4().hex[:12]),
            mapping=mapping,
            job_id="",
            source=source,
            destination=destination,
            message=error.message,
            detail=f"{error.code}",
            created_at=now,
        )
    )


def claim(
    ports: DocumentPorts,
    kind: str,
    dataverse_id: str,
    holder: str,
    document_number: str,
    *,
    wait: float = _BUSY_WAIT_SECONDS,
) -> Claim | ConversionEntry:
    """Claim the ledger row; the Converted row when there is nothing left to do.

    While another worker's claim is live this waits for it (up to ``wait`` seconds): a duplicate
    message or a racing poll then finds the document converted instead of being redelivered at
    once, again and again, into the dead-letter queue.

    Raises:
        RetriableError: ``ConversionInProgress`` when the other worker is still at it.
    """
    deadline = time.monotonic() + wait
    while True:
        now = ports.clock.now()
        entry = ports.ledger.get(kind, dataverse_id)
        decision = decide_claim(entry, holder, now)
        if decision is ClaimDecision.DONE:
            assert entry is not None
            return entry
        if decision is ClaimDecision.TAKE:
            base = entry or ConversionEntry(kind=kind, dataverse_id=dataverse_id, state=ConversionState.CONVERTING)
            wanted = base.with_changes(
                state=ConversionState.CONVERTING,
                holder=holder,
                claimed_until=now + CLAIM_PERIOD,
                document_number=document_number or base.document_number,
                updated_at=now,
            )
            written = ports.ledger.write(wanted)
            if written is not None:
                return Claim(ports, written, holder, fresh=entry is None)
        if time.monotonic() >= deadline:
            raise RetriableError(
                f"the {kind} {document_number or dataverse_id} is being converted by another worker",
                code="ConversionInProgress",
            )
        time.sleep(_BUSY_POLL_SECONDS)


# -- BC ---------------------------------------------------------------------------------------------
def _first_error(outcomes: Iterable[Any], doing: str) -> SyncError | None:
    for outcome in outcomes:
        if not outcome.ok:
            return outcome.error or RetriableError(f"{doing} failed", code="Unknown")
    return None


def find_by_marker(bc: BusinessCentralPort, kind: DocumentKind, marker: str) -> dict[str, Any] | None:
    """The BC document created with this marker, if one exists."""
    filter_ = f"externalDocumentNumber eq {string_literal(marker)}"
    found = [r for page in bc.list_records(kind.bc_entity_set, filter=filter_, select=["number"]) for r in page]
    return found[0] if found else None


def create_header(
    ports: DocumentPorts, kind: DocumentKind, plan: DocumentPlan, marker: str, *, search_first: bool = True
) -> dict[str, Any]:
    """Find the document by its marker, else create it; a create whose answer was lost is found again.

    ``search_first=False`` when no earlier attempt exists (a freshly inserted ledger row).

    Raises:
        RetriableError: BC failed, or the create's outcome is still unknown.
        PermanentError: BC refused the header (named by BC's message).
    """
    existing = find_by_marker(ports.bc, kind, marker) if search_first else None
    if existing is not None:
        return existing
    outcome = ports.bc.create_records(kind.bc_entity_set, [plan.header])[0]
    if outcome.ok and outcome.record is not None:
        return outcome.record
    error = outcome.error or RetriableError("creating the BC document failed", code="Unknown")
    if not isinstance(error, RetriableError):
        raise error
    # The answer was lost or BC failed mid-way: the header may exist. Look before anyone re-creates.
    for wait in _FIND_AGAIN_WAITS:
        time.sleep(wait)
        try:
            existing = find_by_marker(ports.bc, kind, marker)
        except RetriableError:
            continue
        if existing is not None:
            _log.info("%s %s: found the BC document after a lost create answer", kind.value, marker)
            return existing
    raise error


def create_missing_lines(
    ports: DocumentPorts, kind: DocumentKind, bc_id: str, plan: DocumentPlan, *, new_document: bool = False
) -> None:
    """Create the planned lines BC does not have yet (matched by ``sequence``), in one ``$batch``.

    ``new_document``: the header was created just now, so it has no lines to read.

    Raises:
        RetriableError, PermanentError: the first failed line's error (the others may exist;
            the next attempt creates only what is still missing).
    """
    existing: set[int] = set()
    if not new_document:
        lines = ports.bc.list_related(kind.bc_entity_set, bc_id, kind.bc_line_set)
        existing = {int(r.get("sequence") or 0) for r in lines}
    missing = [dict(line, documentId=bc_id) for line in plan.lines if int(line["sequence"]) not in existing]
    if not missing:
        return
    error = _first_error(ports.bc.create_records(kind.bc_line_set, missing), f"creating {kind.bc_line_set}")
    if error is not None:
        raise error


def finish_header(ports: DocumentPorts, kind: DocumentKind, bc_id: str, plan: DocumentPlan) -> dict[str, Any]:
    """Write the final header fields; the updated document."""
    outcome = ports.bc.update_records(kind.bc_entity_set, [RecordChange(bc_id, plan.final_header)])[0]
    if not outcome.ok:
        raise outcome.error or RetriableError("updating the BC document failed", code="Unknown")
    return outcome.record or {}


def couple_document(couplings: CouplingStore, mapping: str, bc_id: str, dataverse_id: str) -> None:
    """Couple the pair; a coupling of exactly this pair already there is fine.

    Raises:
        PermanentError: ``CouplingConflict`` when either side is coupled to something else.
    """
    try:
        couplings.couple(Coupling(mapping=mapping, bc_id=bc_id.lower(), dataverse_id=dataverse_id.lower()))
    except PermanentError:
        again = couplings.get_by_dataverse_id(mapping, dataverse_id)
        if again is None or again.bc_id.lower() != bc_id.lower():
            raise


# -- Dataverse write-back ---------------------------------------------------------------------------
def _submitted_date_set(value: Any) -> bool:
    return bool(value) and str(value)[:10] not in _NEVER_SUBMITTED


def write_back_submitted(
    ports: DocumentPorts, order_id: str, now: dt.datetime, row: Mapping[str, Any] | None = None
) -> None:
    """``lastbackofficesubmit`` := today through Active → update → Submitted (a Submitted order is read-only).

    Idempotent: an order that already has the date is left alone; one left Active by a crash
    half-way is finished. ``row`` is the order as read by this attempt (else it is read).
    """
    if row is None:
        row = read_document(ports.dataverse, DocumentKind.ORDER, order_id, ("statecode", "lastbackofficesubmit"))
    if _submitted_date_set(row.get("lastbackofficesubmit")) and row.get("statecode") == SUBMITTED:
        return
    steps: list[dict[str, Any]] = []
    if row.get("statecode") == SUBMITTED:
        steps.append({"statecode": ACTIVE, "statuscode": _ACTIVE_PENDING})
    steps.append({"lastbackofficesubmit": now.strftime("%Y-%m-%dT00:00:00Z")})
    steps.append({"statecode": SUBMITTED, "statuscode": _SUBMITTED_IN_PROGRESS})
    for values in steps:
        outcome = ports.dataverse.update_rows("salesorders", [RecordChange(order_id, values)])[0]
        if not outcome.ok:
            raise outcome.error or RetriableError("updating the Sales order failed", code="Unknown")


# -- the use-cases ----------------------------------------------------------------------------------
def convert_sales_order(
    ports: DocumentPorts, order_id: str, *, holder: str | None = None, store_not_submitted: bool = True
) -> ConversionResult:
    """Create the BC order for a submitted Sales order, or return the one it became.

    Raises:
        PermanentError / ConfigurationError: a precondition failed; stored (once per cause; an
            order that is not submitted only when ``store_not_submitted``).
        RetriableError: BC, Dataverse or storage failed, or another worker is on it; nothing is
            lost, the next attempt resumes.
    """
    holder = holder or uuid.uuid4().hex
    kind = DocumentKind.ORDER
    order_id = guid_literal(order_id)
    source, destination = f"dataverse:salesorders({order_id})", "bc:salesOrders"
    row = read_document(ports.dataverse, kind, order_id, _ORDER_COLUMNS)
    number = str(row.get("ordernumber") or "")
    if row.get("statecode") != SUBMITTED:
        # Active only for a moment while a worker writes lastbackofficesubmit back: that one is
        # in the ledger with its BC order; anything else is simply not submitted (yet, or again).
        entry = ports.ledger.get(kind.value, order_id)
        if entry is None or entry.bc_id is None:
            error = PermanentError(
                f"The sales order {number} cannot be created in Business Central: it is not submitted. "
                "Submit it in Dynamics 365 Sales (only Submitted orders are converted).",
                code="OrderNotSubmitted",
            )
            if store_not_submitted:
                store_error(ports, error, mapping=MAPPING_SALES_ORDER, source=source, destination=destination)
            raise error
    held = claim(ports, kind.value, order_id, holder, number)
    if isinstance(held, ConversionEntry):
        return ConversionResult(order_id, number, held.bc_id or "", held.bc_number, created=False)
    try:
        lines = read_lines(ports.dataverse, kind, order_id)
        plan = plan_document(kind, row, lines, resolve(ports, kind, row, lines))
    except (PermanentError, ConfigurationError) as error:
        held.fail(error, mapping=MAPPING_SALES_ORDER, source=source, destination=destination)
        raise
    except SyncError as error:
        held.release(error)
        raise
    try:
        return _create(ports, held, kind, row, plan=plan)
    except (PermanentError, ConfigurationError) as error:
        held.fail(error, mapping=MAPPING_SALES_ORDER, source=source, destination=destination)
        raise
    except SyncError as error:
        held.release(error)
        raise


def _create(
    ports: DocumentPorts, held: Claim, kind: DocumentKind, row: Mapping[str, Any], *, plan: DocumentPlan
) -> ConversionResult:
    order_id, number = str(row["salesorderid"]), str(row.get("ordernumber") or "")
    bc_id = held.entry.bc_id
    new_document = False
    if bc_id is None:
        header = create_header(ports, kind, plan, creation_marker(kind, order_id), search_first=not held.fresh)
        bc_id = str(header["id"])
        new_document = held.fresh
        try:
            held.save(bc_id=bc_id, bc_number=str(header.get("number") or ""))
        except RetriableError:
            _drop_orphan(ports, kind, order_id, bc_id)
            raise
    create_missing_lines(ports, kind, bc_id, plan, new_document=new_document)
    finished = finish_header(ports, kind, bc_id, plan)
    bc_number = str(finished.get("number") or held.entry.bc_number)
    couple_document(ports.couplings, MAPPING_SALES_ORDER, bc_id, order_id)
    write_back_submitted(ports, order_id, ports.clock.now(), row)
    held.save(
        state=ConversionState.CONVERTED, holder="", claimed_until=None, bc_number=bc_number, last_error="",
        last_error_code="",
    )  # fmt: skip
    _log.info("sales order %s → BC order %s (%s)", number, bc_number, bc_id)
    return ConversionResult(order_id, number, bc_id, bc_number, created=True)


def _drop_orphan(ports: DocumentPorts, kind: DocumentKind, dataverse_id: str, bc_id: str) -> None:
    # Our claim was taken over after we created the header: if the new holder found another
    # document, ours is an orphan nobody references; delete it so exactly one remains.
    current = ports.ledger.get(kind.value, dataverse_id)
    if current is not None and current.bc_id and current.bc_id.lower() != bc_id.lower():
        ports.bc.delete_records(kind.bc_entity_set, [bc_id])


def handle_order_request(ports: DocumentPorts, request: DocumentRequest) -> ConversionResult | None:
    """One ``sales-orders`` message: convert the order unless the message asks for nothing.

    A push event is acted on only when "Automatically Create Sales Orders" is on and the change
    is not the connector's own write-back. A failed precondition is stored by the conversion and
    not raised: the poll brings the order back once its cause is fixed (no redelivery storm).

    Raises:
        RetriableError, ConfigurationError (other than a missing write-in item): for redelivery.
    """
    if request.source == "push":
        if not ports.settings.auto_create_orders:
            _log.info("sales order %s pushed, but AUTO_CREATE_SALES_ORDERS is off", request.dataverse_id)
            return None
        own = ports.application_user_id()
        if own and request.initiator == own.lower():
            return None
    try:
        # A push or poll of an order that is not (or no longer) Submitted is no error to store.
        return convert_sales_order(ports, request.dataverse_id, store_not_submitted=request.source == "manual")
    except (PermanentError, ConfigurationError) as error:
        if isinstance(error, ConfigurationError) and error.code not in _STORED_CONFIGURATION_CODES:
            raise
        _log.warning("sales order %s not converted: %s", request.dataverse_id, error.message)
        return None


_STORED_CONFIGURATION_CODES = frozenset({"WriteInProductNotConfigured"})


def poll_submitted_orders(ports: DocumentPorts, queue_name: str, *, limit: int = 500) -> int:
    """The safety net: queue every Submitted order Sales has not heard back about.

    Selects ``statecode = Submitted`` and ``lastbackofficesubmit`` empty (or 1900-01-01, the
    built-in's blank) and sends one message each; the ledger makes a repeat harmless.
    Returns how many were queued.
    """
    if not ports.settings.auto_create_orders or ports.queue is None:
        return 0
    filter_ = (
        f"statecode eq {SUBMITTED} and (lastbackofficesubmit eq null or lastbackofficesubmit le 1900-01-02T00:00:00Z)"
    )
    ids = [
        str(row["salesorderid"])
        for page in ports.dataverse.list_rows("salesorders", filter=filter_, select=["ordernumber"])
        for row in page
    ][:limit]
    for order_id in ids:
        ports.queue.send(queue_name, DocumentRequest(order_id, "poll").to_json())
    return len(ids)
