"""Posted invoices, payment status and account statistics, BC → Sales: the HTTP actions and the timers."""

from __future__ import annotations

import logging

import azure.functions as func

from functions._http import http_errors, json_response
from functions._views import coupling_view, job_view
from shared import composition
from shared.usecases.account_statistics import update_account_statistics, update_customer_statistics
from shared.usecases.invoices import create_invoice_in_dataverse, sync_posted_invoices
from shared.usecases.payment_status import update_payment_status

bp = func.Blueprint()
_log = logging.getLogger(__name__)


@bp.route(route="invoices/{bcInvoiceId}/create-in-dataverse", methods=["POST"])
@http_errors
def http_create_invoice_in_dataverse(req: func.HttpRequest) -> func.HttpResponse:
    """Create Invoice in Dynamics 365 Sales: 201 with the coupling (200 when it was there already)."""
    bc_id = req.route_params["bcInvoiceId"]
    result = create_invoice_in_dataverse(bc_id, **composition.invoice_ports())
    coupling = result.couplings[bc_id.lower()]
    status = 201 if result.job.counters.inserted or result.job.counters.coupled else 200
    return json_response({"job": job_view(result.job), "coupling": coupling_view(coupling)}, status)


@bp.route(route="customers/{bcId}/update-statistics", methods=["POST"])
@http_errors
def http_update_account_statistics(req: func.HttpRequest) -> func.HttpResponse:
    """Update Account Statistics: the customer's statistics row and its invoices' payment status."""
    statistics, payments = update_customer_statistics(req.route_params["bcId"], **composition.statistics_ports())
    return json_response(
        {
            "message": "The customer statistics have been successfully updated in Dynamics 365 Sales.",
            "jobs": [job_view(statistics), job_view(payments)],
        }
    )


@bp.timer_trigger(schedule="%SCHEDULE_POSTED_INVOICES%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_posted_invoices(timer: func.TimerRequest) -> None:
    """Posted invoices of coupled customers, changed since the last run, into Sales."""
    result = sync_posted_invoices(watermarks=composition.watermark_store(), **composition.invoice_ports())
    _log.info("posted invoices: %s %s", result.job.status.value, result.job.counters)


@bp.timer_trigger(schedule="%SCHEDULE_PAYMENT_STATUS%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_payment_status(timer: func.TimerRequest) -> None:
    """Paid / Partial / Complete for Sales invoices whose BC invoice changed since the last run."""
    job = update_payment_status(**composition.payment_status_ports())
    _log.info("invoice payment status: %s %s", job.status.value, job.counters)


@bp.timer_trigger(schedule="%SCHEDULE_ACCOUNT_STATISTICS%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_account_statistics(timer: func.TimerRequest) -> None:
    """Account statistics of the coupled customers with activity since the last run."""
    job = update_account_statistics(**composition.statistics_ports())
    _log.info("account statistics: %s %s", job.status.value, job.counters)
