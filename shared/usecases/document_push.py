"""Dataverse push for Sales orders and quotes: a service endpoint per queue and one step each.

When "Automatically Create Sales Orders" (or "... Process Sales Quotes") is on, a change of a
``salesorder``'s (``quote``'s) state is posted by Dataverse to the ``sales-orders`` (``quotes``)
queue, so a submitted order reaches BC within seconds; the poll stays the safety net. The steps
filter on ``statecode``: submitting, activating, winning and revising change it, other edits
post nothing. Registration is idempotent (found by name, as ``shared.usecases.push`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.notifications import ProcessingStep, service_endpoint_for, step_name
from shared.errors import SyncError
from shared.resources import QUEUE_QUOTES, QUEUE_SALES_ORDERS
from shared.usecases.push import PushRegistry, PushSetupReport, SetupItem, ensure_endpoint, ensure_step, set_up_push

__all__ = ["document_steps", "ensure_document_push", "set_up_all_push"]

_FILTER = ("statecode",)


def document_steps(*, orders: bool, quotes: bool) -> list[tuple[str, ProcessingStep]]:
    """(queue, step) for each document push that is switched on."""
    wanted = []
    for enabled, entity, queue in ((orders, "salesorder", QUEUE_SALES_ORDERS), (quotes, "quote", QUEUE_QUOTES)):
        if enabled:
            step = ProcessingStep(
                name=step_name("Update", entity, queue),
                message="Update",
                entity=entity,
                filtering_attributes=_FILTER,
                description="Registered by the BC connector (POST /api/setup/push) for document conversion.",
            )
            wanted.append((queue, step))
    return wanted


def ensure_document_push(
    *, registry: PushRegistry, connections: Mapping[str, str | None], orders: bool, quotes: bool
) -> list[SetupItem]:
    """The endpoint and step of each switched-on document queue, each exactly once.

    ``connections`` maps each queue to the connection string its endpoint sends with (in Azure a
    send-only rule scoped to that queue).
    """
    items: list[SetupItem] = []
    for queue, step in document_steps(orders=orders, quotes=quotes):
        name = f"BC connector: {queue}"
        connection_string = connections.get(queue)
        if not connection_string:
            items.append(SetupItem("serviceEndpoint", name, "failed", f"no connection string to send to {queue}"))
            continue
        try:
            endpoint_id, endpoint_item = ensure_endpoint(registry, service_endpoint_for(name, connection_string, queue))
        except SyncError as error:
            items.append(SetupItem("serviceEndpoint", name, "failed", f"{error.code}: {error.message}"))
            continue
        items += [endpoint_item, ensure_step(registry, step, endpoint_id)]
    return items


def set_up_all_push(
    *,
    document_connections: Mapping[str, str | None],
    auto_create_orders: bool,
    auto_process_quotes: bool,
    **push: Any,
) -> PushSetupReport:
    """``POST /api/setup/push``: the mappings' push both ways (``push.set_up_push`` with ``push``),
    then the order and quote steps that are switched on; one report of everything."""
    report = set_up_push(**push)
    documents = ensure_document_push(
        registry=push["registry"],
        connections=document_connections,
        orders=auto_create_orders,
        quotes=auto_process_quotes,
    )
    return PushSetupReport((*report.items, *documents))
