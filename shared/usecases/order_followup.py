"""Order follow-up, BC → Sales, on a schedule: one run over every coupled Sales order.

Reads in bulk (the couplings, the BC orders by id, their posted invoices by order id and
shipments by order number, the Sales orders, the posts already written), plans each order with
``shared.domain.order_followup``, then writes in bulk: missing posts, then the Sales orders'
state sequence (a Submitted order is read-only, so: Active → fields → back to Submitted, or on to
Invoiced), then removes the couplings of finished orders. An order that fails is recorded as an
error of the job and tried again next run; the others go on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from shared.adapters.dataverse.errors import DUPLICATE_RECORD
from shared.adapters.tables._keys import newest_first_key
from shared.domain.conversion_ledger import ConversionState
from shared.domain.invoices import POSTED_INVOICE_MAPPING
from shared.domain.order_followup import (
    ACTIVE,
    SUBMITTED,
    BcOrderState,
    FollowUpPlan,
    PostedDocument,
    SalesOrderState,
    missing_posts,
    plan_follow_up,
)
from shared.domain.sales_documents import MAPPING_SALES_ORDER, DocumentKind
from shared.domain.state import Coupling, JobCounters, JobStatus, SyncDirection, SyncErrorRecord, SyncJob
from shared.errors import SyncError
from shared.odata import guid_literal, string_literal
from shared.ports import (
    BusinessCentralPort,
    BusinessCentralQueries,
    Clock,
    CouplingStore,
    DataversePort,
    RecordChange,
    SyncErrorStore,
    SyncJobStore,
)
from shared.usecases._jobs import finish_job, start_job
from shared.usecases.sales_orders import ConversionLedger

__all__ = ["follow_up_orders"]

_log = logging.getLogger(__name__)
_CHUNK = 15  # ids per "or" filter: short URLs on both APIs
_SUBMITTED_IN_PROGRESS = 3
_LOOKUP_TARGET = "customerid@Microsoft.Dynamics.CRM.lookuplogicalname"


@dataclass(frozen=True)
class _Order:
    coupling: Coupling
    plan: FollowUpPlan


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _any_of(field: str, literals: Iterable[str]) -> str:
    return " or ".join(f"{field} eq {literal}" for literal in literals)


def _posted(
    queries: BusinessCentralQueries, entity_set: str, field: str, literals: list[str]
) -> dict[str, list[PostedDocument]]:
    found: dict[str, list[PostedDocument]] = {}
    for chunk in _chunks(literals):
        for page in queries.query(entity_set, filter=_any_of(field, chunk), select=[field, "number", "postingDate"]):
            for record in page:
                key = str(record.get(field) or "").lower()
                found.setdefault(key, []).append(
                    PostedDocument(
                        str(record.get("number") or ""),
                        str(record.get("postingDate") or ""),
                        bc_id=str(record.get("id") or "").lower(),
                    )
                )
    return found


def _bc_states(
    bc: BusinessCentralPort, queries: BusinessCentralQueries, store: CouplingStore, couplings: Sequence[Coupling]
) -> dict[str, BcOrderState]:
    bc_ids = [c.bc_id for c in couplings]
    orders = {k.lower(): v for k, v in bc.get_records("salesOrders", bc_ids).items()}
    # Posted invoices keep the order's id; BC deletes the order itself once it is fully posted.
    invoices = _posted(queries, "salesInvoices", "orderId", [guid_literal(i) for i in bc_ids])
    numbers: dict[str, str] = {i: str(o.get("number") or "") for i, o in orders.items()}
    for bc_id in bc_ids:
        if bc_id not in numbers and invoices.get(bc_id):
            numbers[bc_id] = _order_number_of_invoices(queries, bc_id)
    shipments = _posted(queries, "salesShipments", "orderNumber", [string_literal(n) for n in numbers.values() if n])
    # Which posted invoices already have their Sales invoice (the posted-invoice job couples them).
    invoice_ids = [i.bc_id for found in invoices.values() for i in found if i.bc_id]
    in_sales = set(store.get_many_by_bc_ids(POSTED_INVOICE_MAPPING, invoice_ids)) if invoice_ids else set()
    states = {}
    for bc_id in bc_ids:
        order = orders.get(bc_id)
        number = numbers.get(bc_id, "")
        states[bc_id] = BcOrderState(
            bc_order_id=bc_id,
            exists=order is not None,
            number=number,
            status=str((order or {}).get("status") or ""),
            requested_delivery_date=(order or {}).get("requestedDeliveryDate"),
            shipments=tuple(shipments.get(number.lower(), ())) if number else (),
            invoices=tuple(invoices.get(bc_id, ())),
            invoices_in_sales=all(i.bc_id in in_sales for i in invoices.get(bc_id, ())),
        )
    return states


def _order_number_of_invoices(queries: BusinessCentralQueries, bc_id: str) -> str:
    for page in queries.query("salesInvoices", filter=f"orderId eq {guid_literal(bc_id)}", select=["orderNumber"]):
        for record in page:
            if record.get("orderNumber"):
                return str(record["orderNumber"])
    return ""


def _sales_states(dataverse: DataversePort, couplings: Sequence[Coupling]) -> dict[str, SalesOrderState]:
    rows = dataverse.get_rows(
        "salesorders",
        [c.dataverse_id for c in couplings],
        select=["ordernumber", "statecode", "customerid", "requestdeliveryby", "datefulfilled"],
    )
    # The customer of an order is an account or a contact; only an account has the account wall.
    # Rows name the lookup's table when the API annotates them; else ask which ids are accounts.
    annotated = any(r.get(_LOOKUP_TARGET) for r in rows.values())
    customers = sorted({str(r["customerid"]).lower() for r in rows.values() if r.get("customerid")})
    accounts = set() if annotated else {k.lower() for k in dataverse.get_rows("accounts", customers, select=["name"])}
    states = {}
    for key, row in rows.items():
        customer = str(row.get("customerid") or "").lower() or None
        target = row.get(_LOOKUP_TARGET)
        is_account = target == "account" if target else customer in accounts
        states[key.lower()] = SalesOrderState(
            salesorder_id=key.lower(),
            ordernumber=str(row.get("ordernumber") or ""),
            statecode=int(row.get("statecode") or 0),
            account_id=customer if is_account else None,
            requestdeliveryby=row.get("requestdeliveryby"),
            datefulfilled=row.get("datefulfilled"),
        )
    return states


def _existing_posts(dataverse: DataversePort, post_ids: list[str]) -> list[str]:
    return [k.lower() for k in dataverse.get_rows("posts", post_ids, select=["text"])] if post_ids else []


def follow_up_orders(
    *,
    bc: BusinessCentralPort,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    ledger: ConversionLedger,
    clock: Clock,
) -> SyncJob:
    """One follow-up run over every coupled Sales order; its job row has the counters."""
    job = start_job(MAPPING_SALES_ORDER, SyncDirection.TO_DATAVERSE, jobs=jobs, clock=clock)
    coupled = list(couplings.list_couplings(MAPPING_SALES_ORDER))
    if not coupled:
        return finish_job(MAPPING_SALES_ORDER, job.job_id, jobs=jobs)
    try:
        bc_states = _bc_states(bc, queries, couplings, coupled)
        sales_states = _sales_states(dataverse, coupled)
    except SyncError as error:
        return jobs.finish(MAPPING_SALES_ORDER, job.job_id, JobStatus.FAILED, error.message)
    orders: list[_Order] = []
    counts = JobCounters()
    for coupling in coupled:
        sales = sales_states.get(coupling.dataverse_id.lower())
        if sales is None:
            # The Sales order was deleted: nothing to follow up any more.
            couplings.uncouple(MAPPING_SALES_ORDER, coupling.bc_id)
            counts += JobCounters(uncoupled=1)
            continue
        orders.append(_Order(coupling, plan_follow_up(bc_states[coupling.bc_id.lower()], sales)))
    counts += _write(
        orders,
        sales_states,
        dataverse=dataverse,
        couplings=couplings,
        errors=errors,
        ledger=ledger,
        job=job,
        clock=clock,
    )
    jobs.add_counts(MAPPING_SALES_ORDER, job.job_id, counts)
    return finish_job(MAPPING_SALES_ORDER, job.job_id, jobs=jobs)


def _write(
    orders: list[_Order],
    sales_states: dict[str, SalesOrderState],
    *,
    dataverse: DataversePort,
    couplings: CouplingStore,
    errors: SyncErrorStore,
    ledger: ConversionLedger,
    job: SyncJob,
    clock: Clock,
) -> JobCounters:
    failed: dict[str, str] = {}
    # 1. Posts first: an order is only finished (Invoiced, uncoupled) once its posts are there.
    planned = [p for o in orders for p in o.plan.posts]
    existing = _existing_posts(dataverse, [p.post_id for p in planned])
    by_post = {p.post_id: o for o in orders for p in o.plan.posts}
    posts = [p for o in orders for p in missing_posts(o.plan, existing)]
    for post, outcome in zip(posts, dataverse.create_rows("posts", [p.row() for p in posts]), strict=True):
        # A post another run created meanwhile has the same id: Dataverse refuses the copy.
        if not outcome.ok and not (outcome.error and outcome.error.code == DUPLICATE_RECORD):
            failed[by_post[post.post_id].plan.salesorder_id] = f"posting to the timeline: {_message(outcome.error)}"
    # 2. The Sales orders: open the Submitted ones, write, close again (or on to the final state).
    writing = [o for o in orders if o.plan.changes_order and o.plan.salesorder_id not in failed]
    opened = [o for o in writing if sales_states[o.plan.salesorder_id].statecode == SUBMITTED]
    _update(dataverse, opened, lambda o: {"statecode": ACTIVE, "statuscode": 1}, failed, "opening the order")
    _update(dataverse, [o for o in writing if _fields(o.plan)], lambda o: _fields(o.plan), failed, "updating it")
    _update(
        dataverse,
        [o for o in writing if o.plan.set_state or o in opened],
        lambda o: _final_state(o.plan),
        failed,
        "setting its state",
    )
    # 3. Finished orders leave the follow-up.
    counts = JobCounters()
    for order in orders:
        order_id = order.plan.salesorder_id
        if order_id in failed:
            _record_error(errors, job, order.coupling, failed[order_id], clock)
            counts += JobCounters(failed=1)
            continue
        if order.plan.uncouple:
            couplings.uncouple(MAPPING_SALES_ORDER, order.coupling.bc_id)
            counts += JobCounters(uncoupled=1)
        if order.plan.clear_last_submit:
            _forget_conversion(ledger, order.coupling)
        changed = order.plan.changes_order or bool(missing_posts(order.plan, existing))
        counts += JobCounters(modified=1) if changed else JobCounters(unchanged=1)
    return counts


def _forget_conversion(ledger: ConversionLedger, coupling: Coupling) -> None:
    """After the BC order was deleted by hand, submitting the Sales order again must create a new one."""
    entry = ledger.get(DocumentKind.ORDER.value, coupling.dataverse_id)
    if entry is None or entry.state is not ConversionState.CONVERTED or (entry.bc_id or "").lower() != coupling.bc_id:
        return
    ledger.write(
        entry.with_changes(
            state=ConversionState.FAILED,
            bc_id=None,
            bc_number="",
            last_error=f"The BC order {entry.bc_number} was deleted in Business Central; submit the order again.",
            last_error_code="DeletedInBusinessCentral",
        )
    )  # None when a conversion claimed it meanwhile: that one is newer


def _fields(plan: FollowUpPlan) -> dict[str, object]:
    values: dict[str, object] = dict(plan.header)
    if plan.clear_last_submit:
        values["lastbackofficesubmit"] = None
    return values


def _final_state(plan: FollowUpPlan) -> dict[str, object]:
    state, status = plan.set_state or (SUBMITTED, _SUBMITTED_IN_PROGRESS)
    return {"statecode": state, "statuscode": status}


def _update(
    dataverse: DataversePort,
    orders: list[_Order],
    values_of: Callable[[_Order], dict[str, object]],
    failed: dict[str, str],
    doing: str,
) -> None:
    todo = [o for o in orders if o.plan.salesorder_id not in failed]
    if not todo:
        return
    changes = [RecordChange(o.plan.salesorder_id, values_of(o)) for o in todo]
    for order, outcome in zip(todo, dataverse.update_rows("salesorders", changes), strict=True):
        if not outcome.ok:
            failed[order.plan.salesorder_id] = f"{doing}: {_message(outcome.error)}"


def _message(error: SyncError | None) -> str:
    return error.message if error else "unknown error"


def _record_error(errors: SyncErrorStore, job: SyncJob, coupling: Coupling, message: str, clock: Clock) -> None:
    now = clock.now()
    _log.warning("order follow-up of Sales order %s failed: %s", coupling.dataverse_id, message)
    errors.add(
        SyncErrorRecord(
            error_id=newest_first_key(now, uuid.uuid4().hex[:12]),
            mapping=MAPPING_SALES_ORDER,
            job_id=job.job_id,
            source=f"salesOrders({coupling.bc_id})",
            destination=f"salesorders({coupling.dataverse_id})",
            message=f"Sales order {coupling.dataverse_id}: {message}",
            detail="",
            created_at=now,
        )
    )
