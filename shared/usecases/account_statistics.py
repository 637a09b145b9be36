"""Account statistics in Sales (``nav_accountstatistics``), kept current for coupled customers (§6.3).

Which customers a run recomputes, with requests that grow with them and not with all customers:

- customers with activity since the last run: BC ``customers``, ``salesInvoices`` and
  ``salesOrders`` changed in the window (three filtered reads of ids only);
- coupled customers whose account has no statistics row yet (the initial upload, and a row a user
  removed): one Dataverse read of the accounts without the link.

Their figures are then read 50 customers per request from each BC source, compared with the stored
rows (read in bulk) and only changed rows are written, with ``CreateMultiple``/``UpdateMultiple``.
A new row's id is derived from the account's, so a run that stops between creating the row and
linking it to the account finds the row again instead of making another.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.state import Coupling, JobCounters, SyncDirection, SyncJob
from shared.domain.statistics import (
    ACCOUNT_LINK,
    STATISTICS_COLUMNS,
    STATISTICS_ENTITY_SET,
    STATISTICS_JOB,
    UNPOSTED_INVOICE_STATUSES,
    CustomerActivity,
    account_statistics,
    statistics_changes,
)
from shared.domain.watermarks import parse_instant
from shared.errors import PermanentError, RetriableError
from shared.odata import any_of, guid_literal
from shared.ports import (
    BusinessCentralPort,
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
from shared.usecases.payment_status import update_payment_status

__all__ = ["statistics_row_id", "update_account_statistics", "update_customer_statistics"]

CUSTOMER_MAPPING = "CUSTOMER"
CUSTOMER_CHUNK = 50  # customers per BC request (ids in a filter: about 2.5 KB of URL)
DUPLICATE_RECORD = "0x80040237"
_ROW_NAMESPACE = uuid.UUID("8b6f0e52-93d4-4f0c-a7a2-31c5d0e6b7f4")
_ORDER_LINE_FIELDS = ("lineType", "quantity", "shippedQuantity", "invoicedQuantity", "netAmountIncludingTax")


def statistics_row_id(account_id: str) -> str:
    """The ``nav_accountstatisticsid`` a new statistics row of this account gets (the same every time)."""
    return str(uuid.uuid5(_ROW_NAMESPACE, f"nav_accountstatistics/{account_id.lower()}"))


@dataclass
class _Run:
    job_id: str
    now: datetime
    counters: JobCounters = field(default_factory=JobCounters)
    failures: dict[str, str] = field(default_factory=dict)  # BC customer id → message


def update_account_statistics(
    *,
    bc: BusinessCentralPort,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    watermarks: WatermarkStore,
    clock: Clock,
    customer_ids: Sequence[str] | None = None,
) -> SyncJob:
    """Recompute the statistics of customers with activity (the timer), or of the given customers.

    The timer's watermark moves to the run's window end only when no customer failed. A customer
    or account that no longer exists fails with "… was not found." and its coupling is skipped.

    Raises:
        PermanentError: a given customer id is not a GUID, or not coupled (``NotCoupled``).
        RetriableError, ConfigurationError: an API or the state store failed before anything
            was written; the watermark stays.
    """
    now = clock.now()
    stored = window = None
    if customer_ids is not None:
        wanted = [guid_literal(i) for i in customer_ids]
        coupled = couplings.get_many_by_bc_ids(CUSTOMER_MAPPING, wanted)
        for bc_id in wanted:
            if bc_id not in coupled:
                raise PermanentError(
                    f"Customer {bc_id} is not coupled to a Dynamics 365 Sales account.", code="NotCoupled"
                )
    else:
        stored, window = open_window(watermarks, STATISTICS_JOB, now)
        active = _active_customers(queries, window_filter(window)) if stored is not None else set()
        active |= _customers_without_statistics(dataverse, couplings)
        coupled = {k: c for k, c in couplings.get_many_by_bc_ids(CUSTOMER_MAPPING, active).items() if not c.skipped}
    job = start_job(STATISTICS_JOB, SyncDirection.TO_DATAVERSE, jobs=jobs, clock=clock)
    run = _Run(job.job_id, now)
    try:
        desired = _figures(list(coupled), bc=bc, queries=queries, lcy=dataverse.base_currency_id(), run=run)
        _write(desired, coupled, run, dataverse=dataverse, couplings=couplings)
    finally:
        _skip_missing(run, coupled, couplings)
        for bc_id, message in run.failures.items():
            record_error(
                errors,
                now=now,
                job=STATISTICS_JOB,
                job_id=run.job_id,
                source=f"bc:customers({bc_id})",
                destination=f"dataverse:accounts({coupled[bc_id].dataverse_id})",
                message=message,
                detail="updating the account statistics in Dynamics 365 Sales",
            )
        jobs.add_counts(STATISTICS_JOB, run.job_id, run.counters + JobCounters(failed=len(run.failures)))
        job = finish_job(STATISTICS_JOB, run.job_id, jobs=jobs)
    if window is not None and not run.failures:
        close_window(watermarks, STATISTICS_JOB, stored, window, ())
    return job


def _skip_missing(run: _Run, coupled: Mapping[str, Coupling], couplings: CouplingStore) -> None:
    """A customer or account that no longer exists: the coupling fails and is skipped (the built-in's rule)."""
    gone = [
        coupled[bc_id].with_changes(
            last_result_to_dataverse="Failure", last_error=message, last_job_id=run.job_id, skipped=True
        )
        for bc_id, message in run.failures.items()
        if message.endswith("was not found.")
    ]
    if gone:
        with contextlib.suppress(RetriableError):
            couplings.update_many(gone)


# -- which customers ----------------------------------------------------------------------------------------
def _active_customers(queries: BusinessCentralQueries, in_window: str) -> set[str]:
    """Customers changed, or with an invoice or order changed, in the window (BC's "activity")."""
    active = {str(r["id"]).lower() for r in flatten(queries.query("customers", filter=in_window, select=["id"]))}
    for document in ("salesInvoices", "salesOrders"):
        records = flatten(queries.query(document, filter=in_window, select=["customerId"]))
        active.update(str(r["customerId"]).lower() for r in records if r.get("customerId"))
    return active


def _customers_without_statistics(dataverse: DataversePort, couplings: CouplingStore) -> set[str]:
    """Coupled customers whose account has no statistics row linked (never uploaded, or unlinked)."""
    accounts = flatten(dataverse.list_rows("accounts", filter=f"_{ACCOUNT_LINK}_value eq null", select=["accountid"]))
    coupled = couplings.get_many_by_dataverse_ids(CUSTOMER_MAPPING, [str(a["accountid"]) for a in accounts])
    return {c.bc_id.lower() for c in coupled.values()}


# -- BC figures -------------------------------------------------------------------------------------------
def _by_customer(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(str(record.get("customerId") or "").lower(), []).append(record)
    return grouped


def _figures(
    customer_ids: list[str],
    *,
    bc: BusinessCentralPort,
    queries: BusinessCentralQueries,
    lcy: str | None,
    run: _Run,
) -> dict[str, dict[str, Any]]:
    desired: dict[str, dict[str, Any]] = {}
    for chunk in chunks(sorted(customer_ids), CUSTOMER_CHUNK):
        ids = [uuid.UUID(i) for i in chunk]
        customers = bc.get_records("customers", chunk, select=["number", "displayName", "creditLimit"])
        financial = bc.get_records("customerFinancialDetails", chunk)
        orders = _by_customer(
            flatten(
                queries.query(
                    "salesOrders",
                    filter=any_of("customerId", ids),
                    select=["customerId"],
                    expand={"salesOrderLines": _ORDER_LINE_FIELDS},
                )
            )
        )
        unposted_filter = " or ".join(f"status eq '{status}'" for status in UNPOSTED_INVOICE_STATUSES)
        unposted = _by_customer(
            flatten(
                queries.query(
                    "salesInvoices",
                    filter=f"{any_of('customerId', ids)} and ({unposted_filter})",
                    select=["customerId", "totalAmountIncludingTax"],
                )
            )
        )
        for bc_id in chunk:
            customer = customers.get(bc_id)
            if customer is None:
                run.failures[bc_id] = f"Customer {bc_id} was not found."
                continue
            activity = CustomerActivity(
                customer, financial.get(bc_id), tuple(orders.get(bc_id, ())), tuple(unposted.get(bc_id, ()))
            )
            desired[bc_id] = account_statistics(activity, as_of=run.now.date(), lcy_currency_id=lcy)
    return desired


# -- Dataverse rows -----------------------------------------------------------------------------------------
def _write(
    desired: dict[str, dict[str, Any]],
    coupled: Mapping[str, Coupling],
    run: _Run,
    *,
    dataverse: DataversePort,
    couplings: CouplingStore,
) -> None:
    account_of = {bc_id: coupled[bc_id].dataverse_id.lower() for bc_id in desired}
    accounts = dataverse.get_rows("accounts", list(account_of.values()), select=[ACCOUNT_LINK])
    for bc_id, account_id in account_of.items():
        if account_id not in accounts:
            run.failures[bc_id] = f"Account {account_id} was not found."
    linked = {
        bc_id: str(accounts[a][ACCOUNT_LINK]).lower()
        for bc_id, a in account_of.items()
        if a in accounts and accounts[a].get(ACCOUNT_LINK)
    }
    rows = dataverse.get_rows(STATISTICS_ENTITY_SET, list(set(linked.values())), select=STATISTICS_COLUMNS)
    linked = {bc_id: row_id for bc_id, row_id in linked.items() if row_id in rows}  # a link to a deleted row is none
    updates: list[tuple[str, RecordChange]] = []
    creates: list[tuple[str, dict[str, Any]]] = []
    for bc_id, values in desired.items():
        if bc_id in run.failures:
            continue
        row_id = linked.get(bc_id)
        if row_id is None:
            creates.append((bc_id, {"nav_accountstatisticsid": statistics_row_id(account_of[bc_id]), **values}))
        elif changes := statistics_changes(rows[row_id], values):
            updates.append((bc_id, RecordChange(row_id, changes)))
        else:
            run.counters += JobCounters(unchanged=1)
    created = _create_rows(creates, updates, run, dataverse=dataverse)
    modified = _update_rows(updates, run, dataverse=dataverse)
    run.counters += JobCounters(inserted=len(created), modified=len(modified))
    # New rows, and rows made by an earlier run that stopped before linking them, get linked now.
    to_link = [b for b in (*created, *modified) if b not in linked]
    _link(to_link, account_of, coupled, run, dataverse=dataverse, couplings=couplings)


def _create_rows(
    creates: list[tuple[str, dict[str, Any]]],
    updates: list[tuple[str, RecordChange]],
    run: _Run,
    *,
    dataverse: DataversePort,
) -> list[str]:
    created: list[str] = []
    outcomes = dataverse.create_rows(STATISTICS_ENTITY_SET, [row for _, row in creates])
    for (bc_id, row), outcome in zip(creates, outcomes, strict=True):
        if outcome.ok:
            created.append(bc_id)
        elif outcome.error is not None and outcome.error.code == DUPLICATE_RECORD:
            # Made by a run that stopped before linking it: bring it up to date (then link it).
            values = {k: v for k, v in row.items() if k != "nav_accountstatisticsid"}
            updates.append((bc_id, RecordChange(str(row["nav_accountstatisticsid"]), values)))
        else:
            run.failures[bc_id] = outcome.error.message if outcome.error else "the statistics row was not created"
    return created


def _update_rows(updates: list[tuple[str, RecordChange]], run: _Run, *, dataverse: DataversePort) -> list[str]:
    modified: list[str] = []
    outcomes = dataverse.update_rows(STATISTICS_ENTITY_SET, [change for _, change in updates])
    for (bc_id, _), outcome in zip(updates, outcomes, strict=True):
        if outcome.ok:
            modified.append(bc_id)
        else:
            run.failures[bc_id] = outcome.error.message if outcome.error else "the statistics row was not updated"
    return modified


def _link(
    bc_ids: list[str],
    account_of: Mapping[str, str],
    coupled: Mapping[str, Coupling],
    run: _Run,
    *,
    dataverse: DataversePort,
    couplings: CouplingStore,
) -> None:
    """Point each account at its new statistics row, keeping the account's coupling timestamp current.

    The link is the connector's own write: the coupling's Dataverse modification time moves with
    it, so the next sync does not take the account for one a user changed.
    """
    if not bc_ids:
        return
    changes = [RecordChange(account_of[b], {ACCOUNT_LINK: statistics_row_id(account_of[b])}) for b in bc_ids]
    linked = []
    for bc_id, outcome in zip(bc_ids, dataverse.update_rows("accounts", changes), strict=True):
        if outcome.ok:
            linked.append(bc_id)
        else:
            run.failures[bc_id] = outcome.error.message if outcome.error else "the account was not linked"
    stamps = dataverse.get_rows("accounts", [account_of[b] for b in linked], select=["modifiedon"])
    moved = [
        coupled[b].with_changes(dataverse_modified_at=parse_instant(str(stamps[account_of[b]]["modifiedon"])))
        for b in linked
        if stamps.get(account_of[b], {}).get("modifiedon") and coupled[b].dataverse_modified_at is not None
    ]
    with contextlib.suppress(RetriableError):
        couplings.update_many(moved)  # a coupling changed meanwhile was synced since: its stamp is newer


def update_customer_statistics(
    bc_id: str,
    *,
    bc: BusinessCentralPort,
    queries: BusinessCentralQueries,
    dataverse: DataversePort,
    couplings: CouplingStore,
    jobs: SyncJobStore,
    errors: SyncErrorStore,
    watermarks: WatermarkStore,
    clock: Clock,
) -> tuple[SyncJob, SyncJob]:
    """ "Update Account Statistics" on one customer: its statistics row, then the payment status of
    its invoices in Sales (the built-in's action does both). Returns the two jobs."""
    statistics = update_account_statistics(
        customer_ids=[bc_id],
        bc=bc,
        queries=queries,
        dataverse=dataverse,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        watermarks=watermarks,
        clock=clock,
    )
    payments = update_payment_status(
        customer_id=bc_id,
        queries=queries,
        dataverse=dataverse,
        couplings=couplings,
        jobs=jobs,
        errors=errors,
        watermarks=watermarks,
        clock=clock,
    )
    return statistics, payments
