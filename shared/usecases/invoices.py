"""Posted sales invoices BC → Sales: "Create Invoice in Dynamics 365 Sales" and the timer (behaviour reference §6.1).

One Sales invoice per posted invoice, however often this runs: the Dataverse row's id is derived
from the BC invoice's id, so before creating anything the run looks the row up by that id (a crash
between creating and coupling leaves a row that the next run finds and couples instead of making a
second), creates only the lines that are missing, and couples the pair under POSTEDSALESINV-INV.
Everything is read and written in bulk across the invoices of a run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.invoices import (
    ACTIVE,
    ACTIVE_BILLED,
    POSTED_INVOICE_MAPPING,
    SALES_ORDER_MAPPING,
    InvoiceContext,
    InvoicePlan,
    ProductRef,
    SalesOrderRef,
    invoice_row_id,
    payment_state,
    plan_invoice,
)
from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncJob
from shared.domain.watermarks import parse_instant
from shared.errors import PermanentError, SyncError
from shared.odata import any_of, guid_literal
from shared.ports import (
    BusinessCentralQueries,
    Clock,
    CouplingStore,
    DataversePort,
    RecordChange,
    SyncErrorStore,
    SyncJobStore,
    WatermarkStore,
)
from shared.usecases._bc_to_sales import chunks, close_window, flatten, open_window, record_error, window_filter
from shared.usecases._jobs import finish_job, start_job

__all__ = ["InvoiceResult", "create_invoice_in_dataverse", "sync_posted_invoices"]

Record = dict[str, Any]

BLANK_GUID = "00000000-0000-0000-0000-000000000000"
DUPLICATE_RECORD = "0x80040237"  # Dataverse: a row with this id exists already
ID_CHUNK = 50  # ids per BC filter (about 2.5 KB of URL)
POSTED_FILTER = "(status eq 'Open' or status eq 'Paid' or status eq 'Canceled' or status eq 'Corrective')"
HEADER_FIELDS = (
    "number",
    "status",
    "customerId",
    "customerNumber",
    "currencyId",
    "currencyCode",
    "orderId",
    "orderNumber",
    "salesperson",
    "paymentTermsId",
    "dueDate",
    "billToName",
    "shipToName",
    *(f"{side}{part}" for side in ("billTo", "shipTo")
      for part in ("AddressLine1", "AddressLine2", "City", "Country", "State", "PostCode")),
    "pricesIncludeTax",
    "discountAmount",
    "totalAmountExcludingTax",
    "totalTaxAmount",
    "totalAmountIncludingTax",
    "remainingAmount",
    "lastModifiedDateTime",
)  # fmt: skip
LINE_FIELDS = (
    "sequence",
    "lineType",
    "itemId",
    "lineObjectNumber",
    "description",
    "quantity",
    "unitPrice",
    "discountAmount",
    "netTaxAmount",
    "shipmentDate",
)


@dataclass(frozen=True)
class InvoiceResult:
    """What one run did: its job, and the coupling of each invoice that is now in Sales."""

    job: SyncJob
    couplings: dict[str, Coupling] = field(default_factory=dict)
    failures: dict[str, SyncError] = field(default_factory=dict)


@dataclass
class _Run:
    job_id: str
    now: datetime
    counters: JobCounters = field(default_factory=JobCounters)
    couplings: dict[str, Coupling] = field(default_factory=dict)
    failures: dict[str, SyncError] = field(default_factory=dict)


def create_invoice_in_dataverse(
    bc_invoice_id: str,
    *,
    company_id: str,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    clock: Clock,
) -> InvoiceResult:
    """Create Invoice in Dynamics 365 Sales for one posted invoice (or answer its existing coupling).

    Raises:
        PermanentError: not a GUID (``InvalidGuid``), no such invoice (``NotFound``), or the
            invoice cannot be created (``NotPosted``, ``CustomerNotCoupled``, ...): the job log
            and the error log have it too.
        RetriableError, ConfigurationError: an API or the state store failed; nothing is lost,
            the request can be repeated.
    """
    invoice_id = guid_literal(bc_invoice_id)
    found = _read_invoices(queries, [invoice_id])
    if invoice_id not in found:
        raise PermanentError(f"There is no sales invoice {invoice_id} in Business Central.", code="NotFound")
    result = _run_job(
        list(found.values()),
        company_id=company_id,
        queries=queries,
        dataverse=dataverse,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        clock=clock,
    )
    if invoice_id in result.failures:
        raise result.failures[invoice_id]
    return result


def sync_posted_invoices(
    *,
    company_id: str,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    watermarks: WatermarkStore,
    clock: Clock,
) -> InvoiceResult:
    """The timer: posted invoices of coupled customers, changed since the last run, into Sales.

    Raises:
        RetriableError, ConfigurationError, PermanentError: a read failed; the watermark stays.
    """
    stored, window = open_window(watermarks, POSTED_INVOICE_MAPPING, clock.now())
    headers = flatten(
        queries.query(
            "salesInvoices",
            filter=f"{POSTED_FILTER} and {window_filter(window)}",
            select=["customerId", "lastModifiedDateTime"],
        )
    )
    customers = couplings.get_many_by_bc_ids("CUSTOMER", {str(h["customerId"]).lower() for h in headers})
    of_coupled = [h for h in headers if str(h["customerId"]).lower() in customers]
    coupled = couplings.get_many_by_bc_ids(POSTED_INVOICE_MAPPING, [str(h["id"]).lower() for h in of_coupled])
    new = [str(h["id"]).lower() for h in of_coupled if str(h["id"]).lower() not in coupled]
    invoices = list(_read_invoices(queries, new).values())
    result = _run_job(
        invoices,
        company_id=company_id,
        queries=queries,
        dataverse=dataverse,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        clock=clock,
        unchanged=len(of_coupled) - len(new),
    )
    modified = {str(h["id"]).lower(): str(h.get("lastModifiedDateTime") or "") for h in headers}
    close_window(watermarks, POSTED_INVOICE_MAPPING, stored, window, (modified[i] for i in result.failures))
    return result


# -- the run ---------------------------------------------------------------------------------------------
def _read_invoices(queries: BusinessCentralQueries, ids: Sequence[str]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for chunk in chunks(sorted(set(ids)), ID_CHUNK):
        pages = queries.query(
            "salesInvoices",
            filter=any_of("id", [uuid.UUID(i) for i in chunk]),
            select=HEADER_FIELDS,
            expand={"salesInvoiceLines": LINE_FIELDS},
        )
        found.update({str(r["id"]).lower(): r for r in flatten(pages)})
    return found


def _run_job(
    invoices: list[Record],
    *,
    company_id: str,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    clock: Clock,
    unchanged: int = 0,
) -> InvoiceResult:
    job = start_job(POSTED_INVOICE_MAPPING, SyncDirection.TO_DATAVERSE, jobs=jobs, clock=clock)
    run = _Run(job.job_id, clock.now(), JobCounters(unchanged=unchanged))
    try:
        _create_invoices(
            invoices, run, company_id=company_id, queries=queries, dataverse=dataverse, couplings=couplings
        )
    finally:
        for bc_id, error in run.failures.items():
            record_error(
                errors,
                now=run.now,
                job=POSTED_INVOICE_MAPPING,
                job_id=run.job_id,
                source=f"bc:salesInvoices({bc_id})",
                destination=f"dataverse:invoices({invoice_row_id(company_id, bc_id)})",
                message=error.message,
                detail=f"{error.code}: creating the posted invoice in Dynamics 365 Sales",
            )
        jobs.add_counts(POSTED_INVOICE_MAPPING, run.job_id, run.counters + JobCounters(failed=len(run.failures)))
        job = finish_job(POSTED_INVOICE_MAPPING, run.job_id, jobs=jobs)
    return InvoiceResult(job, run.couplings, run.failures)


def _create_invoices(
    invoices: list[Record],
    run: _Run,
    *,
    company_id: str,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
) -> None:
    ids = [str(i["id"]).lower() for i in invoices]
    already = couplings.get_many_by_bc_ids(POSTED_INVOICE_MAPPING, ids)
    run.couplings.update(already)
    run.counters += JobCounters(unchanged=len(already))
    todo = [i for i in invoices if str(i["id"]).lower() not in already]
    if not todo:
        return
    contexts = _contexts(todo, queries=queries, dataverse=dataverse, couplings=couplings)
    plans: dict[str, tuple[Record, InvoicePlan]] = {}
    for invoice in todo:
        bc_id = str(invoice["id"]).lower()
        try:
            plans[bc_id] = (
                invoice,
                plan_invoice(company_id, invoice, invoice.get("salesInvoiceLines") or [], contexts[bc_id]),
            )
        except PermanentError as error:
            run.failures[bc_id] = error
    if not plans:
        return
    # Re-find before creating: a row with the derived id is this invoice, made by a run that stopped early.
    existing = dataverse.get_rows("invoices", [p.invoice_id for _, p in plans.values()], select=["statecode"])
    missing = [bc_id for bc_id, (_, plan) in plans.items() if plan.invoice_id not in existing]
    created: set[str] = set()
    outcomes = dataverse.create_rows("invoices", [plans[bc_id][1].header for bc_id in missing])
    for bc_id, outcome in zip(missing, outcomes, strict=True):
        if outcome.ok or (outcome.error is not None and outcome.error.code == DUPLICATE_RECORD):
            created.add(bc_id)
        else:
            run.failures[bc_id] = outcome.error or PermanentError("the invoice was not created")
    recovered = {
        bc_id
        for bc_id, (_, plan) in plans.items()
        if plan.invoice_id in existing and int(existing[plan.invoice_id].get("statecode") or 0) == ACTIVE
    }
    _create_lines(plans, created, recovered, run, dataverse=dataverse)
    ready = [bc_id for bc_id in plans if bc_id not in run.failures]
    _apply_payment_state([plans[b] for b in ready if b in created], run, dataverse=dataverse)
    _couple(ready, plans, created, run, couplings=couplings)


def _create_lines(
    plans: Mapping[str, tuple[Record, InvoicePlan]],
    created: set[str],
    recovered: set[str],
    run: _Run,
    *,
    dataverse: DataversePort,
) -> None:
    have: set[str] = set()
    recovered_ids = [plans[b][1].invoice_id for b in recovered]
    for chunk in chunks(recovered_ids, ID_CHUNK):
        pages = dataverse.list_rows(
            "invoicedetails", filter=any_of("_invoiceid_value", [uuid.UUID(i) for i in chunk]), select=["invoiceid"]
        )
        have.update(str(row["invoicedetailid"]).lower() for row in flatten(pages))
    lines: list[tuple[str, Record]] = [
        (bc_id, line)
        for bc_id in (*created, *recovered)
        if bc_id not in run.failures
        for line in plans[bc_id][1].lines
        if line["invoicedetailid"] not in have
    ]
    outcomes = dataverse.create_rows("invoicedetails", [line for _, line in lines])
    for (bc_id, _), outcome in zip(lines, outcomes, strict=True):
        duplicate = outcome.error is not None and outcome.error.code == DUPLICATE_RECORD
        if not outcome.ok and not duplicate and bc_id not in run.failures:
            run.failures[bc_id] = outcome.error or PermanentError("an invoice line was not created")


def _apply_payment_state(created: list[tuple[Record, InvoicePlan]], run: _Run, *, dataverse: DataversePort) -> None:
    # An invoice already (partly) paid or canceled when it reaches Sales gets its state at once.
    changes = [
        RecordChange(plan.invoice_id, payment_state(invoice).values())
        for invoice, plan in created
        if payment_state(invoice) != ACTIVE_BILLED
    ]
    if changes:
        dataverse.update_rows("invoices", changes)  # a failure here is mended by the payment status job


def _couple(
    ready: list[str],
    plans: Mapping[str, tuple[Record, InvoicePlan]],
    created: set[str],
    run: _Run,
    *,
    couplings: CouplingStore,
) -> None:
    pairs = [
        Coupling(
            mapping=POSTED_INVOICE_MAPPING,
            bc_id=bc_id,
            dataverse_id=plans[bc_id][1].invoice_id,
            bc_modified_at=_instant(plans[bc_id][0].get("lastModifiedDateTime")),
            last_synced_at=run.now,
            last_result_to_dataverse="Success",
            last_job_id=run.job_id,
        )
        for bc_id in ready
    ]
    for pair, stored in zip(pairs, couplings.couple_many(pairs), strict=True):
        if isinstance(stored, Coupling):
            run.couplings[pair.bc_id] = stored
        else:
            # Another run coupled the same pair meanwhile: that is the outcome we wanted.
            same = couplings.get_by_bc_id(POSTED_INVOICE_MAPPING, pair.bc_id)
            if same is not None and same.dataverse_id == pair.dataverse_id:
                run.couplings[pair.bc_id] = same
                continue
            run.failures[pair.bc_id] = stored
            continue
        if pair.bc_id in created:
            run.counters += JobCounters(inserted=1)
        else:
            run.counters += JobCounters(coupled=1)


def _instant(value: Any) -> datetime | None:
    return parse_instant(str(value)) if value else None


# -- what the invoices refer to, resolved in bulk -----------------------------------------------------------
def _ids(values: Iterable[Any]) -> list[str]:
    return sorted({str(v).lower() for v in values if v and str(v) != BLANK_GUID})


def _contexts(
    invoices: list[Record], *, queries: BusinessCentralQueries, dataverse: DataversePort, couplings: CouplingStore
) -> dict[str, InvoiceContext]:
    customers = couplings.get_many_by_bc_ids("CUSTOMER", _ids(i.get("customerId") for i in invoices))
    currencies = couplings.get_many_by_bc_ids("CURRENCY", _ids(i.get("currencyId") for i in invoices))
    terms = couplings.get_many_by_bc_ids("PAYMENT TERMS", _ids(i.get("paymentTermsId") for i in invoices))
    item_ids = _ids(line.get("itemId") for i in invoices for line in i.get("salesInvoiceLines") or [])
    items = couplings.get_many_by_bc_ids("ITEM-PRODUCT", item_ids)
    products = dataverse.get_rows(
        "products", [c.dataverse_id for c in items.values()], select=["defaultuomid", "defaultuomscheduleid"]
    )
    base_units = _base_units(dataverse, products.values())
    orders = couplings.get_many_by_bc_ids(SALES_ORDER_MAPPING, _ids(i.get("orderId") for i in invoices))
    order_rows = dataverse.get_rows(
        "salesorders",
        [c.dataverse_id for c in orders.values()],
        select=["name", "customerid", "pricelevelid", "opportunityid", "ownerid"],
    )
    accounts = dataverse.get_rows(
        "accounts", [c.dataverse_id for c in customers.values()], select=["defaultpricelevelid"]
    )
    owners = _salesperson_owners(invoices, queries=queries, couplings=couplings)
    term_options = _invoice_payment_terms(dataverse) if terms else {}
    lcy = dataverse.base_currency_id() if any(not _ids([i.get("currencyId")]) for i in invoices) else None
    product_refs = {
        bc_id: ProductRef(c.dataverse_id, _product_unit(products[c.dataverse_id], base_units))
        for bc_id, c in items.items()
        if c.dataverse_id in products
    }
    contexts: dict[str, InvoiceContext] = {}
    for invoice in invoices:
        customer = customers.get(str(invoice.get("customerId") or "").lower())
        account_id = customer.dataverse_id if customer else None
        currency_bc = _ids([invoice.get("currencyId")])
        currency = (
            (currencies[currency_bc[0]].dataverse_id if currency_bc[0] in currencies else None) if currency_bc else lcy
        )
        term = terms.get(str(invoice.get("paymentTermsId") or "").lower())
        order_coupling = orders.get(str(invoice.get("orderId") or "").lower())
        order = None
        if order_coupling is not None and order_coupling.dataverse_id in order_rows:
            row = order_rows[order_coupling.dataverse_id]
            order = SalesOrderRef(
                salesorder_id=order_coupling.dataverse_id,
                name=row.get("name"),
                account_id=_lookup(row, "customerid"),
                price_level_id=_lookup(row, "pricelevelid"),
                opportunity_id=_lookup(row, "opportunityid"),
                owner_id=_lookup(row, "ownerid"),
            )
        contexts[str(invoice["id"]).lower()] = InvoiceContext(
            account_id=account_id,
            currency_id=currency,
            price_level_id=_lookup(accounts.get(account_id or "", {}), "defaultpricelevelid"),
            owner_id=owners.get(str(invoice.get("salesperson") or "").lower()),
            payment_terms=term_options.get(term.dataverse_id) if term else None,
            order=order,
            products=product_refs,
        )
    return contexts


def _base_units(dataverse: DataversePort, products: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Unit group → its base unit, for products without a default unit (one read for all groups)."""
    groups = sorted({g for p in products if not p.get("defaultuomid") and (g := _lookup(p, "defaultuomscheduleid"))})
    if not groups:
        return {}
    units = flatten(
        dataverse.list_rows(
            "uoms",
            filter=f"{any_of('_uomscheduleid_value', [uuid.UUID(g) for g in groups])} and isschedulebaseuom eq true",
            select=["uomscheduleid"],
        )
    )
    return {str(u["uomscheduleid"]).lower(): str(u["uomid"]).lower() for u in units}


def _product_unit(product: Mapping[str, Any], base_units: Mapping[str, str]) -> str | None:
    # The product's default unit; a product synced without one sells in its unit group's base unit.
    return _lookup(product, "defaultuomid") or base_units.get(_lookup(product, "defaultuomscheduleid") or "")


def _invoice_payment_terms(dataverse: DataversePort) -> dict[str, int]:
    """PAYMENT TERMS couples BC terms to the account's option set; the invoice has its own, matched by label."""
    invoice_values = {
        str(o["label"]).casefold(): int(o["value"]) for o in dataverse.list_options("invoice", "paymenttermscode")
    }
    return {
        str(o["value"]): invoice_values[str(o["label"]).casefold()]
        for o in dataverse.list_options("account", "paymenttermscode")
        if str(o["label"]).casefold() in invoice_values
    }


def _lookup(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    return str(value).lower() if value else None


def _salesperson_owners(
    invoices: list[Record], *, queries: BusinessCentralQueries, couplings: CouplingStore
) -> dict[str, str]:
    """Salesperson code (lower case) → the systemuser coupled to it under SALESPEOPLE.

    Couplings are keyed by the salesperson's id while an invoice names the code: one read per 50
    distinct codes of the run (codes repeat across invoices).
    """
    codes = sorted({str(i.get("salesperson")) for i in invoices if i.get("salesperson")})
    owners: dict[str, str] = {}
    for chunk in chunks(codes, ID_CHUNK):
        people = flatten(queries.query("salespeoplePurchasers", filter=any_of("code", chunk), select=["code"]))
        coupled = couplings.get_many_by_bc_ids("SALESPEOPLE", [str(p["id"]).lower() for p in people])
        for person in people:
            coupling = coupled.get(str(person["id"]).lower())
            if coupling is not None:
                owners[str(person["code"]).lower()] = coupling.dataverse_id
    return owners
