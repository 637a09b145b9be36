"""Payment status of posted invoices in Sales: Paid/Complete, Paid/Partial or Billed (behaviour reference §6.2).

BC API v2.0 has no customer ledger; a posted ``salesInvoice`` carries what the rule needs: its
``remainingAmount`` (the ledger entry's Remaining Amount), its original amount
(``totalAmountIncludingTax``) and its ``status`` (Canceled, Corrective). Applying a payment changes
the invoice's ``lastModifiedDateTime``, so the timer reads the invoices changed since its watermark
(the built-in reads detailed ledger entries after an entry number), keeps those coupled under
POSTEDSALESINV-INV, and writes only the ones whose Sales state differs, in bulk. A Paid or Canceled
invoice is re-activated first, then set (Dataverse changes only Active invoices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.domain.invoices import PAYMENT_STATUS_JOB, POSTED_INVOICE_MAPPING, InvoiceState, payment_state, state_steps
from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncJob
from shared.errors import SyncError
from shared.odata import guid_literal
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
from shared.usecases._bc_to_sales import close_window, flatten, open_window, record_error, window_filter
from shared.usecases._jobs import finish_job, start_job
from shared.usecases.invoices import POSTED_FILTER

__all__ = ["PAYMENT_STATUS_JOB", "update_payment_status"]

_FIELDS = ("status", "remainingAmount", "totalAmountIncludingTax", "lastModifiedDateTime")


def update_payment_status(
    *,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    watermarks: WatermarkStore,
    clock: Clock,
    customer_id: str | None = None,
) -> SyncJob:
    """Bring the state of coupled Sales invoices in line with BC's remaining amounts.

    Without ``customer_id`` (the timer): the invoices changed since the last run, and the
    watermark moves on afterwards, never past an invoice that failed. With it (Update Account
    Statistics): every posted invoice of that customer; the watermark is left alone.

    Raises:
        RetriableError, ConfigurationError, PermanentError: a read failed; nothing was half-done
            that the next run would not redo.
    """
    now = clock.now()
    if customer_id is not None:
        stored, window = None, None
        odata_filter = f"customerId eq {guid_literal(customer_id)} and {POSTED_FILTER}"
    else:
        stored, window = open_window(watermarks, PAYMENT_STATUS_JOB, now)
        odata_filter = f"{POSTED_FILTER} and {window_filter(window)}"
    invoices = flatten(queries.query("salesInvoices", filter=odata_filter, select=_FIELDS))
    job = start_job(PAYMENT_STATUS_JOB, SyncDirection.TO_DATAVERSE, jobs=jobs, clock=clock)
    failures: dict[str, SyncError] = {}
    counters = JobCounters()
    try:
        counters, failures = _apply(invoices, dataverse=dataverse, couplings=couplings)
    finally:
        for bc_id, error in failures.items():
            record_error(
                errors,
                now=now,
                job=PAYMENT_STATUS_JOB,
                job_id=job.job_id,
                source=f"bc:salesInvoices({bc_id})",
                destination="dataverse:invoices",
                message=error.message,
                detail=f"{error.code}: updating the payment status of the Sales invoice",
            )
        jobs.add_counts(PAYMENT_STATUS_JOB, job.job_id, counters + JobCounters(failed=len(failures)))
        job = finish_job(PAYMENT_STATUS_JOB, job.job_id, jobs=jobs)
    if window is not None:
        modified = {str(i["id"]).lower(): str(i.get("lastModifiedDateTime") or "") for i in invoices}
        close_window(watermarks, PAYMENT_STATUS_JOB, stored, window, (modified[i] for i in failures))
    return job


def _apply(
    invoices: Sequence[dict[str, Any]], *, dataverse: DataversePort, couplings: CouplingStore
) -> tuple[JobCounters, dict[str, SyncError]]:
    coupled = couplings.get_many_by_bc_ids(POSTED_INVOICE_MAPPING, [str(i["id"]).lower() for i in invoices])
    rows = dataverse.get_rows(
        "invoices", [c.dataverse_id for c in coupled.values()], select=["statecode", "statuscode"]
    )
    plans: dict[str, tuple[Coupling, list[InvoiceState]]] = {}
    unchanged = skipped = 0
    for invoice in invoices:
        bc_id = str(invoice["id"]).lower()
        coupling = coupled.get(bc_id)
        if coupling is None:
            continue  # not in Sales (yet): the posted-invoice job creates it with its state
        row = rows.get(coupling.dataverse_id)
        if row is None:
            skipped += 1  # the Sales invoice was deleted; nothing to update
            continue
        current = InvoiceState(int(row.get("statecode") or 0), int(row.get("statuscode") or 0))
        steps = state_steps(current, payment_state(invoice))
        if steps:
            plans[bc_id] = (coupling, steps)
        else:
            unchanged += 1
    failures: dict[str, SyncError] = {}
    pending = dict(plans)
    step = 0
    while pending:
        # One bulk write per step: every re-activation first, then every new state.
        ids = list(pending)
        changes = [RecordChange(pending[b][0].dataverse_id, pending[b][1][step].values()) for b in ids]
        for bc_id, outcome in zip(ids, dataverse.update_rows("invoices", changes), strict=True):
            if not outcome.ok and outcome.error is not None:
                failures[bc_id] = outcome.error
        step += 1
        pending = {b: p for b, p in pending.items() if b not in failures and len(p[1]) > step}
    modified = len(plans) - len(failures)
    return JobCounters(modified=modified, unchanged=unchanged, skipped=skipped), failures
