"""Near-real-time sync: receiving BC webhooks and Dataverse events, and registering both.

- ``receive_bc_notifications``: a webhook POST → ``syncRecords`` messages on ``record-sync`` (one
  per mapping, ids batched), or a queued incremental sync of the mapping for ``collection``.
- ``process_dataverse_event``: a RemoteExecutionContext from ``dataverse-events`` → synced toward
  BC at once. Not re-queued on ``record-sync``: each event names one row, so a second hop would
  add latency and a message without batching anything, and this message already has the same
  settlement (redelivery on retriable errors, stored error when malformed).
- ``ensure_bc_subscriptions`` / ``ensure_dataverse_push`` / ``set_up_push``: idempotent
  registration, found by notification URL (BC) and by name (Dataverse) before anything is created.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.mapping import TableMapping
from shared.domain.notifications import (
    PUSHED_MESSAGES,
    ProcessingStep,
    ServiceEndpoint,
    client_state_matches,
    dataverse_push_mappings,
    parse_bc_notifications,
    parse_remote_execution_context,
    parse_resource,
    plan_bc_notifications,
    plan_dataverse_event,
    service_endpoint_for,
    step_name,
    webhook_mappings,
)
from shared.domain.state import SyncDirection, SyncJob
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError
from shared.ports import Clock, LeaseStore, MessageQueue, SyncJobStore
from shared.resources import QUEUE_RECORD_SYNC
from shared.usecases.sync_engine import SyncEngine
from shared.usecases.synchronize import request_mapping_sync, synchronize_records

__all__ = [
    "RENEW_WITHIN",
    "NotificationOutcome",
    "PushRegistry",
    "SetupItem",
    "WebhookSubscriptions",
    "ensure_bc_subscriptions",
    "ensure_dataverse_push",
    "ensure_endpoint",
    "ensure_step",
    "process_dataverse_event",
    "receive_bc_notifications",
    "renew_bc_subscriptions",
    "set_up_push",
    "wanted_steps",
]

_log = logging.getLogger(__name__)

# Subscriptions live 3 days; renewing those with less than 2 left means a 12-hourly timer renews
# each one about a day and a half early, so one or two missed runs lose nothing.
RENEW_WITHIN = dt.timedelta(days=2)
ENDPOINT_NAME = "BC connector: dataverse-events"


class _Subscription(Protocol):
    # The fields of ``shared.adapters.business_central.Subscription`` this module reads.
    @property
    def subscription_id(self) -> str: ...
    @property
    def notification_url(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def expiration(self) -> dt.datetime | None: ...
    @property
    def etag(self) -> str: ...
    @property
    def client_state(self) -> str: ...


class WebhookSubscriptions(Protocol):
    """BC's ``/subscriptions`` (``BusinessCentralAdapter`` implements it)."""

    def list_subscriptions(self) -> Sequence[_Subscription]:
        """Every live subscription of the environment."""
        ...

    def create_subscription(self, notification_url: str, resource: str, client_state: str) -> _Subscription:
        """Subscribe (BC runs the handshake first)."""
        ...

    def renew_subscription(self, subscription_id: str, etag: str) -> _Subscription:
        """Extend by 3 days (handshake again)."""
        ...

    def delete_subscription(self, subscription_id: str, etag: str | None = None) -> None:
        """Delete; one already gone counts as deleted."""
        ...


class _Step(Protocol):
    @property
    def step_id(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    def differs_from(self, step: ProcessingStep, endpoint_id: str) -> bool: ...


class PushRegistry(Protocol):
    """Dataverse's service endpoints and steps (``shared.adapters.dataverse.push``)."""

    def logical_name(self, entity_set: str) -> str:
        """The table's logical name."""
        ...

    def find_service_endpoint(self, name: str) -> str | None:
        """The endpoint's id by name."""
        ...

    def create_service_endpoint(self, endpoint: ServiceEndpoint) -> str:
        """Create; returns the id."""
        ...

    def update_service_endpoint(self, endpoint_id: str, endpoint: ServiceEndpoint) -> None:
        """Write every column."""
        ...

    def find_step(self, name: str) -> _Step | None:
        """The step by name."""
        ...

    def create_step(self, step: ProcessingStep, endpoint_id: str) -> str:
        """Create; returns the id."""
        ...

    def update_step(self, step_id: str, step: ProcessingStep, endpoint_id: str) -> None:
        """Bring in line."""
        ...


# -- receiving --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotificationOutcome:
    """What a webhook POST led to."""

    authorized: bool
    messages: int = 0
    records: int = 0
    full_syncs: tuple[str, ...] = ()
    ignored: int = 0


def receive_bc_notifications(
    body: bytes,
    *,
    client_state: str | None,
    mappings: Sequence[TableMapping],
    company_id: str,
    queue: MessageQueue,
    jobs: SyncJobStore,
    clock: Clock,
) -> NotificationOutcome:
    """Check and route one BC webhook POST; queue the work and return at once.

    A POST with any wrong ``clientState`` is refused whole (``authorized=False``), and so is
    every POST while no secret is configured: nothing can be verified then.

    Raises:
        PermanentError: ``MalformedNotification``: the body is not a notification list.
        RetriableError: the queue did not take a message (BC retries the POST on 5xx).
    """
    notifications = parse_bc_notifications(body)
    if not client_state or not client_state_matches(notifications, client_state):
        _log.warning("webhook POST refused: clientState does not match (%d notification(s))", len(notifications))
        return NotificationOutcome(authorized=False)
    plan = plan_bc_notifications(notifications, mappings, company_id=company_id)
    for ignored in plan.ignored:
        # Deletes land here on purpose (never propagated automatically); logged so they can be acted on.
        _log.info("webhook notification ignored (%s): %s %s", ignored.reason, ignored.change_type, ignored.resource)
    for batch in plan.batches:
        queue.send(QUEUE_RECORD_SYNC, batch.request.to_json(), message_id=batch.message_id)
    by_name = {m.name: m for m in mappings}
    for name in plan.full_syncs:
        request_mapping_sync(by_name[name], jobs=jobs, queue=queue, clock=clock)
    return NotificationOutcome(
        authorized=True,
        messages=len(plan.batches),
        records=sum(len(b.request.ids) for b in plan.batches),
        full_syncs=plan.full_syncs,
        ignored=len(plan.ignored),
    )


def process_dataverse_event(
    body: bytes,
    *,
    mappings: Sequence[TableMapping],
    registry: PushRegistry,
    application_user_id: str | None,
    engine: SyncEngine,
    jobs: SyncJobStore,
    leases: LeaseStore,
    clock: Clock,
) -> list[SyncJob]:
    """Sync the row a Dataverse event names toward BC, under each mapping of its table.

    Raises:
        PermanentError: ``MalformedMessage`` (stored by the queue trigger, not retried).
        RetriableError, ConfigurationError: left for Service Bus to redeliver.
    """
    event = parse_remote_execution_context(body)
    logical_names = {}
    for mapping in dataverse_push_mappings(mappings):
        try:
            logical_names[mapping.dataverse_entity_set] = registry.logical_name(mapping.dataverse_entity_set)
        except PermanentError as error:
            # One mapping naming a table this organisation lacks must not stop every other table's push.
            _log.warning("mapping %s is left out of Dataverse push: %s", mapping.name, error.message)
    plan = plan_dataverse_event(event, mappings, logical_names=logical_names, application_user_id=application_user_id)
    if plan.skipped:
        _log.info("Dataverse %s of %s %s not synced: %s", event.message, event.entity, event.record_id, plan.skipped)
        return []
    by_name = {m.name: m for m in mappings}
    synced = (
        synchronize_records(
            by_name[r.mapping], r.direction, r.ids, engine=engine, jobs=jobs, leases=leases, clock=clock
        )
        for r in plan.requests
    )
    return [job for job in synced if job is not None]


# -- registering ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SetupItem:
    """One thing registration looked at and what it did: created, renewed, updated, kept, deleted, failed."""

    kind: str  # bcSubscription | serviceEndpoint | step
    name: str
    action: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """As the HTTP answer shows it."""
        return {"kind": self.kind, "name": self.name, "action": self.action, "detail": self.detail}


@dataclass(frozen=True)
class PushSetupReport:
    """Everything one registration run did."""

    items: tuple[SetupItem, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Whether nothing failed."""
        return all(i.action != "failed" for i in self.items)


def _failed(kind: str, name: str, error: SyncError) -> SetupItem:
    _log.warning("push registration: %s %s failed: %s", kind, name, error.message)
    return SetupItem(kind, name, "failed", f"{error.code}: {error.message}")


def _same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def ensure_bc_subscriptions(
    *,
    subscriptions: WebhookSubscriptions,
    mappings: Iterable[TableMapping],
    company_id: str,
    notification_url: str,
    client_state: str,
    clock: Clock,
    renew_within: dt.timedelta = RENEW_WITHIN,
) -> list[SetupItem]:
    """One live subscription per entity set a mapping syncs toward Sales, no more.

    Ours are those pointing at ``notification_url`` for this company. Per entity set: keep the
    first with the current secret (renewed when it expires within ``renew_within``), delete the
    rest (duplicates, or an old secret), create one when none is left. Ours for entity sets no
    mapping wants any more are deleted.

    Raises:
        RetriableError, ConfigurationError: listing the subscriptions failed (nothing was changed).
    """
    company = company_id.lower()
    wanted = sorted(webhook_mappings(mappings))
    ours: dict[str, list[_Subscription]] = {}
    for subscription in subscriptions.list_subscriptions():
        path = parse_resource(subscription.resource)
        if subscription.notification_url == notification_url and path and path.company_id == company:
            ours.setdefault(path.entity_set, []).append(subscription)
    items: list[SetupItem] = []
    for entity_set in sorted(set(ours) - set(wanted)):
        items += _delete_all(subscriptions, entity_set, ours[entity_set], "no mapping needs it")
    for entity_set in wanted:
        existing = ours.get(entity_set, [])
        keep = next((s for s in existing if _same_secret(s.client_state, client_state)), None)
        items += _delete_all(
            subscriptions, entity_set, [s for s in existing if s is not keep], "duplicate or old clientState"
        )
        items.append(
            _keep_or_create(
                subscriptions,
                entity_set,
                keep,
                company=company,
                notification_url=notification_url,
                client_state=client_state,
                clock=clock,
                renew_within=renew_within,
            )
        )
    return items


def _delete_all(
    subscriptions: WebhookSubscriptions, entity_set: str, doomed: list[_Subscription], why: str
) -> list[SetupItem]:
    items = []
    for subscription in doomed:
        try:
            subscriptions.delete_subscription(subscription.subscription_id, subscription.etag or None)
            items.append(SetupItem("bcSubscription", entity_set, "deleted", why))
        except SyncError as error:
            items.append(_failed("bcSubscription", entity_set, error))
    return items


def _keep_or_create(
    subscriptions: WebhookSubscriptions,
    entity_set: str,
    keep: _Subscription | None,
    *,
    company: str,
    notification_url: str,
    client_state: str,
    clock: Clock,
    renew_within: dt.timedelta,
) -> SetupItem:
    try:
        if keep is not None:
            if keep.expiration is not None and keep.expiration - clock.now() > renew_within:
                return SetupItem("bcSubscription", entity_set, "kept", f"expires {keep.expiration.isoformat()}")
            try:
                renewed = subscriptions.renew_subscription(keep.subscription_id, keep.etag)
                expires = renewed.expiration.isoformat() if renewed.expiration else "?"
                return SetupItem("bcSubscription", entity_set, "renewed", f"expires {expires}")
            except PermanentError:
                # Expired or deleted by BC between the listing and now: subscribe afresh below.
                pass
        resource = f"/api/v2.0/companies({company})/{entity_set}"
        created = subscriptions.create_subscription(notification_url, resource, client_state)
        expires = created.expiration.isoformat() if created.expiration else "?"
        return SetupItem("bcSubscription", entity_set, "created", f"expires {expires}")
    except SyncError as error:
        return _failed("bcSubscription", entity_set, error)


def renew_bc_subscriptions(
    *,
    subscriptions: WebhookSubscriptions,
    mappings: Iterable[TableMapping],
    company_id: str,
    notification_url: str | None,
    client_state: str | None,
    clock: Clock,
) -> list[SetupItem]:
    """The timer's run: ``ensure_bc_subscriptions`` when webhooks are configured, else nothing.

    Raises:
        RetriableError, ConfigurationError: listing the subscriptions failed.
    """
    if not notification_url or not client_state:
        _log.info("BC webhooks are not configured (WEBHOOK_NOTIFICATION_URL, WEBHOOK_CLIENT_STATE): nothing to renew")
        return []
    return ensure_bc_subscriptions(
        subscriptions=subscriptions,
        mappings=mappings,
        company_id=company_id,
        notification_url=notification_url,
        client_state=client_state,
        clock=clock,
    )


def wanted_steps(
    mappings: Iterable[TableMapping], logical_name: Callable[[str], str], queue: str
) -> list[ProcessingStep]:
    """The steps push needs: Create and Update of each table whose changes sync toward BC.

    Update steps filter on the mapped Dataverse columns, so edits nobody syncs post nothing.

    Raises:
        PermanentError, RetriableError, ConfigurationError: a table's metadata could not be read.
    """
    columns: dict[str, set[str]] = {}
    for mapping in dataverse_push_mappings(mappings):
        entity = logical_name(mapping.dataverse_entity_set)
        names = {f.dataverse_field for f in mapping.fields_for(SyncDirection.FROM_DATAVERSE) if f.dataverse_field}
        columns.setdefault(entity, set()).update(names)
    steps = []
    for entity in sorted(columns):
        for message in PUSHED_MESSAGES:
            attributes = tuple(sorted(columns[entity])) if message == "Update" else ()
            steps.append(
                ProcessingStep(
                    name=step_name(message, entity, queue),
                    message=message,
                    entity=entity,
                    filtering_attributes=attributes,
                    description="Registered by the BC connector (POST /api/setup/push); found by its name.",
                )
            )
    return steps


def ensure_dataverse_push(
    *, registry: PushRegistry, mappings: Iterable[TableMapping], connection_string: str, queue: str
) -> list[SetupItem]:
    """The connector's service endpoint to ``queue`` and its steps, each exactly once.

    The endpoint is always rewritten (its key cannot be read back, and a rotated key must reach
    it); a step only when it differs. A disabled step is left disabled and reported: an
    administrator switched it off.

    Raises:
        ConfigurationError: the connection string is unusable.
    """
    endpoint = service_endpoint_for(ENDPOINT_NAME, connection_string, queue)
    try:
        endpoint_id, endpoint_item = ensure_endpoint(registry, endpoint)
    except SyncError as error:
        return [_failed("serviceEndpoint", endpoint.name, error)]
    try:
        steps = wanted_steps(mappings, registry.logical_name, queue)
    except SyncError as error:
        return [endpoint_item, _failed("serviceEndpoint", endpoint.name, error)]
    return [endpoint_item, *(ensure_step(registry, step, endpoint_id) for step in steps)]


def ensure_endpoint(registry: PushRegistry, endpoint: ServiceEndpoint) -> tuple[str, SetupItem]:
    """The service endpoint, created or rewritten (its key cannot be read back, and a rotated key
    must reach it); its id and what was done.

    Raises:
        SyncError: Dataverse refused or did not answer.
    """
    endpoint_id = registry.find_service_endpoint(endpoint.name)
    if endpoint_id is None:
        return registry.create_service_endpoint(endpoint), SetupItem("serviceEndpoint", endpoint.name, "created")
    registry.update_service_endpoint(endpoint_id, endpoint)
    return endpoint_id, SetupItem("serviceEndpoint", endpoint.name, "updated")


def ensure_step(registry: PushRegistry, step: ProcessingStep, endpoint_id: str) -> SetupItem:
    """One step on the endpoint, exactly once: created, updated when it differs, else kept (a
    disabled one stays disabled and is reported: an administrator switched it off)."""
    try:
        found = registry.find_step(step.name)
        if found is None:
            registry.create_step(step, endpoint_id)
            return SetupItem("step", step.name, "created")
        if found.differs_from(step, endpoint_id):
            registry.update_step(found.step_id, step, endpoint_id)
            return SetupItem("step", step.name, "updated")
        detail = "" if found.enabled else "disabled in Dataverse: enable it to receive these events"
        return SetupItem("step", step.name, "kept", detail)
    except SyncError as error:
        return _failed("step", step.name, error)


def set_up_push(
    *,
    subscriptions: WebhookSubscriptions,
    registry: PushRegistry,
    mappings: Sequence[TableMapping],
    company_id: str,
    notification_url: str | None,
    client_state: str | None,
    connection_string: str | None,
    queue: str,
    clock: Clock,
) -> PushSetupReport:
    """Register both directions; one side failing does not stop the other.

    Raises:
        ConfigurationError: a setting push needs is missing (named), or unusable.
        RetriableError: BC's subscriptions could not be listed.
    """
    missing = [
        name
        for name, value in (
            ("WEBHOOK_NOTIFICATION_URL", notification_url),
            ("WEBHOOK_CLIENT_STATE", client_state),
            ("DATAVERSE_SERVICEBUS_CONNECTION", connection_string),
        )
        if not value
    ]
    if missing or notification_url is None or client_state is None or connection_string is None:
        raise ConfigurationError(f"push is not configured: set {', '.join(missing)}", code="PushNotConfigured")
    try:
        bc_items = ensure_bc_subscriptions(
            subscriptions=subscriptions,
            mappings=mappings,
            company_id=company_id,
            notification_url=notification_url,
            client_state=client_state,
            clock=clock,
        )
    except RetriableError as error:
        bc_items = [_failed("bcSubscription", "*", error)]
    dataverse_items = ensure_dataverse_push(
        registry=registry, mappings=mappings, connection_string=connection_string, queue=queue
    )
    return PushSetupReport(tuple(bc_items + dataverse_items))
