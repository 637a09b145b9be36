"""Near-real-time push: BC's webhook, Dataverse's events, their registration and renewal."""

from __future__ import annotations

import logging

import azure.functions as func

from functions._http import error_response, http_errors, json_response
from shared import composition
from shared.resources import QUEUE_DATAVERSE_EVENTS
from shared.usecases.document_push import set_up_all_push
from shared.usecases.push import (
    process_dataverse_event,
    receive_bc_notifications,
    renew_bc_subscriptions,
)
from shared.usecases.queue_work import settle_message

bp = func.Blueprint()
_log = logging.getLogger(__name__)

# BC's tokens are short; a longer one is not BC's, and echoing it would only reflect someone's input.
_MAX_VALIDATION_TOKEN = 1024


@bp.route(route="webhooks/bc", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_errors
def http_bc_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """BC's handshake (``?validationToken=`` → the token, text/plain) or its notifications (202)."""
    token = req.params.get("validationToken")
    if token is not None:
        if not 0 < len(token) <= _MAX_VALIDATION_TOKEN:
            return error_response("InvalidValidationToken", "the validation token is empty or too long", 400)
        return func.HttpResponse(
            token, status_code=200, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )
    outcome = receive_bc_notifications(req.get_body(), **composition.push_receive_ports())
    if not outcome.authorized:
        # 401 also tells BC to drop the subscription: one with a stale secret is no use to us.
        return error_response("Unauthorized", "the notification's clientState is not this connector's", 401)
    body = {"messages": outcome.messages, "records": outcome.records, "fullSyncs": list(outcome.full_syncs)}
    return json_response({**body, "ignored": outcome.ignored}, 202)


@bp.route(route="setup/push", methods=["POST"])
@http_errors
def http_set_up_push(req: func.HttpRequest) -> func.HttpResponse:
    """Register BC subscriptions and the Dataverse endpoint + steps (200; 207 when some failed)."""
    report = set_up_all_push(**composition.push_setup_ports())
    items = [item.to_json() for item in report.items]
    return json_response({"complete": report.complete, "items": items}, 200 if report.complete else 207)


@bp.timer_trigger(schedule="%SCHEDULE_WEBHOOK_RENEWAL%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_renew_webhooks(timer: func.TimerRequest) -> None:
    """Renew BC subscriptions before their 3-day expiry; recreate missing ones."""
    for item in renew_bc_subscriptions(**composition.webhook_renewal_ports()):
        _log.info("webhook subscription %s: %s %s", item.name, item.action, item.detail)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=QUEUE_DATAVERSE_EVENTS, connection="ServiceBusConnection")
def queue_dataverse_event(msg: func.ServiceBusMessage) -> None:
    """A Dataverse change posted by the connector's service endpoint: synced toward BC."""

    def handle(body: bytes) -> None:
        process_dataverse_event(body, **composition.dataverse_event_ports())

    settle_message(
        QUEUE_DATAVERSE_EVENTS,
        msg.message_id,
        msg.get_body(),
        handle,
        errors=composition.sync_error_store(),
        clock=composition.clock(),
    )
