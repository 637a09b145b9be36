"""Sales orders and quotes to BC: the queues fed by Dataverse push and the polls, the polls, and
the two buttons ("Create in Business Central", "Process in Business Central")."""

from __future__ import annotations

import logging

import azure.functions as func

from functions._http import http_errors, json_response
from shared import composition
from shared.domain.sales_documents import DocumentKind, parse_document_message
from shared.resources import QUEUE_QUOTES, QUEUE_SALES_ORDERS
from shared.usecases import sales_quotes
from shared.usecases.queue_work import settle_message
from shared.usecases.sales_orders import convert_sales_order, handle_order_request, poll_submitted_orders

bp = func.Blueprint()
_log = logging.getLogger(__name__)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_SALES_ORDERS, connection="ServiceBusConnection")
def queue_sales_order(msg: func.ServiceBusMessage) -> None:
    """A submitted order pushed by Dataverse, queued by the poll or by hand: converted once."""

    def handle(body: bytes) -> None:
        handle_order_request(composition.document_ports(), parse_document_message(body, DocumentKind.ORDER))

    settle_message(
        QUEUE_SALES_ORDERS,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )


@bp.timer_trigger(schedule="%SCHEDULE_SALES_ORDER_POLL%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_poll_sales_orders(timer: func.TimerRequest) -> None:
    """The safety net: submitted orders Sales has not heard back about go on the queue."""
    queued = poll_submitted_orders(composition.document_ports(), QUEUE_SALES_ORDERS)
    _log.info("sales order poll: %d order(s) queued", queued)


@bp.route(route="salesorders/{dataverseId}/create-in-bc", methods=["POST"])
@http_errors
def http_create_sales_order_in_bc(req: func.HttpRequest) -> func.HttpResponse:
    """Create in Business Central: 201 with the new BC order, 200 when it existed already."""
    result = convert_sales_order(composition.document_ports(), req.route_params["dataverseId"])
    return json_response(result.to_json(), 201 if result.created else 200)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_QUOTES, connection="ServiceBusConnection")
def queue_sales_quote(msg: func.ServiceBusMessage) -> None:
    """An activated or won quote pushed by Dataverse, queued by the poll or by hand: processed once."""

    def handle(body: bytes) -> None:
        sales_quotes.handle_quote_request(
            composition.document_ports(), composition.quote_archive(), parse_document_message(body, DocumentKind.QUOTE)
        )

    settle_message(
        QUEUE_QUOTES,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )


@bp.timer_trigger(schedule="%SCHEDULE_SALES_QUOTE_POLL%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_poll_sales_quotes(timer: func.TimerRequest) -> None:
    """The safety net: active and won quotes not processed yet go on the queue."""
    queued = sales_quotes.poll_quotes(composition.document_ports(), QUEUE_QUOTES)
    _log.info("sales quote poll: %d quote(s) queued", queued)


@bp.route(route="quotes/{dataverseId}/process-in-bc", methods=["POST"])
@http_errors
def http_process_quote_in_bc(req: func.HttpRequest) -> func.HttpResponse:
    """Process in Business Central: 201 when a BC quote was created or rebuilt, 200 when nothing changed."""
    result = sales_quotes.process_quote(
        composition.document_ports(), composition.quote_archive(), req.route_params["dataverseId"]
    )
    return json_response(result.to_json(), 201 if result.changed else 200)


@bp.route(route="quotes/{dataverseId}/archive", methods=["GET"])
@http_errors
def http_quote_archive(req: func.HttpRequest) -> func.HttpResponse:
    """The archived BC versions of a quote (all revisions of its quote number), oldest first."""
    versions = sales_quotes.quote_archive_of(
        composition.document_ports(), composition.quote_archive(), req.route_params["dataverseId"]
    )
    return json_response(versions)
