"""Near-real-time push, both ways: what arrives, parsed strictly, and where it goes.

- BC webhook notifications (wire-protocols §D.5): ``{"value": [{subscriptionId, clientState,
  expirationDateTime, resource, changeType, lastModifiedDateTime}]}``, routed to the mappings
  whose BC entity set the resource names.
- Dataverse's JSON RemoteExecutionContext (§C.3) posted by a service endpoint to Service Bus,
  routed to the mappings whose Dataverse table is the event's primary entity.
- What the connector registers for both: the BC entity sets worth a subscription, and the
  Dataverse service endpoint and processing steps.

Everything here is pure: no I/O, so the parsing and routing rules are unit-tested without fakes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from shared.domain.mapping import TableMapping
from shared.domain.messages import SyncRecordsRequest
from shared.domain.state import SyncDirection
from shared.errors import ConfigurationError, PermanentError

__all__ = [
    "CHANGE_COLLECTION",
    "CHANGE_DELETED",
    "WEBHOOK_RESOURCES",
    "BcNotification",
    "DataverseEvent",
    "EventPlan",
    "IgnoredNotification",
    "NotificationPlan",
    "ProcessingStep",
    "RecordBatch",
    "ResourcePath",
    "ServiceEndpoint",
    "client_state_matches",
    "dataverse_push_mappings",
    "parse_bc_notifications",
    "parse_remote_execution_context",
    "parse_resource",
    "plan_bc_notifications",
    "plan_dataverse_event",
    "service_endpoint_for",
    "step_name",
    "webhook_mappings",
]

# BC API v2.0 entity sets that accept webhook subscriptions (Microsoft Learn "Working with
# webhooks", wire-protocols §D.5). Contacts, shipments, customer payments and financial details
# are not among them: the scheduled sync is their only path.
WEBHOOK_RESOURCES: Final = frozenset(
    {
        "accounts",
        "companyInformation",
        "countriesRegions",
        "currencies",
        "customerPaymentJournals",
        "customers",
        "dimensions",
        "employees",
        "generalLedgerEntries",
        "itemCategories",
        "items",
        "journals",
        "paymentMethods",
        "paymentTerms",
        "purchaseInvoices",
        "salesCreditMemos",
        "salesInvoices",
        "salesOrders",
        "salesQuotes",
        "shipmentMethods",
        "unitsOfMeasure",
        "vendors",
    }
)

CHANGE_CREATED: Final = "created"
CHANGE_UPDATED: Final = "updated"
CHANGE_DELETED: Final = "deleted"
CHANGE_COLLECTION: Final = "collection"

# Record ids per syncRecords message: one engine call reads them in one or two bulk requests.
DEFAULT_BATCH_SIZE: Final = 100
# Dataverse messages a step is registered for; Delete is not propagated automatically (§2.11).
PUSHED_MESSAGES: Final = ("Create", "Update")

_RESOURCE = re.compile(
    r"api/v2\.0/companies\((?P<company>[^()/]+)\)/(?P<set>[A-Za-z][A-Za-z0-9]*)(?:\((?P<id>[^()/]*)\))?/?$"
)


def _guid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip().strip("'")))
    except ValueError:
        return None


# -- BC webhook notifications ---------------------------------------------------------------------
@dataclass(frozen=True)
class ResourcePath:
    """What a notification's ``resource`` names: a company's entity set, and a record or not."""

    company_id: str
    entity_set: str
    record_id: str | None  # None for a collection resource


def parse_resource(resource: str) -> ResourcePath | None:
    """Parse ``api/v2.0/companies(<id>)/customers(<id>)`` (leading ``/``, a host and a query allowed).

    Returns ``None`` for anything else: BC documents the shapes loosely (a collection's
    ``$filter`` field name differs between pages), so unknown ones are ignored, not fatal.
    """
    path = unquote(resource.split("?", maxsplit=1)[0])
    match = _RESOURCE.search(path)
    if match is None:
        return None
    company = _guid(match["company"])
    if company is None:
        return None
    record_id = None
    if match["id"] is not None:
        record_id = _guid(match["id"])
        if record_id is None:
            return None
    return ResourcePath(company, match["set"], record_id)


@dataclass(frozen=True)
class BcNotification:
    """One entry of a BC webhook POST."""

    subscription_id: str
    resource: str
    change_type: str
    last_modified: str
    expiration: str
    client_state: str = field(default="", repr=False)  # the shared secret: never in a log line


def _malformed_notification(reason: str) -> PermanentError:
    return PermanentError(f"malformed webhook notification: {reason}", code="MalformedNotification")


def parse_bc_notifications(body: bytes) -> list[BcNotification]:
    """Parse a BC webhook POST body.

    Raises:
        PermanentError: ``MalformedNotification`` naming what is wrong (never echoing values).
    """
    try:
        document = json.loads(body.decode("utf-8-sig"))  # BC sent a BOM before v19
    except (ValueError, UnicodeDecodeError):
        raise _malformed_notification("the body is not JSON") from None
    values = document.get("value") if isinstance(document, dict) else None
    if not isinstance(values, list):
        raise _malformed_notification("the body has no 'value' list")
    notifications = []
    for index, item in enumerate(values):
        if not isinstance(item, dict):
            raise _malformed_notification(f"entry {index} is not an object")
        texts = {}
        for name in ("subscriptionId", "clientState", "resource", "changeType"):
            value = item.get(name)
            if not isinstance(value, str):
                raise _malformed_notification(f"entry {index} has no {name} text")
            texts[name] = value
        notifications.append(
            BcNotification(
                subscription_id=texts["subscriptionId"],
                resource=texts["resource"],
                change_type=texts["changeType"].strip().lower(),
                last_modified=str(item.get("lastModifiedDateTime") or ""),
                expiration=str(item.get("expirationDateTime") or ""),
                client_state=texts["clientState"],
            )
        )
    return notifications


def client_state_matches(notifications: Iterable[BcNotification], secret: str) -> bool:
    """Whether every notification carries ``secret``, compared in constant time.

    An empty POST proves nothing, so it does not match either.
    """
    expected = secret.encode("utf-8")
    checked = [hmac.compare_digest(n.client_state.encode("utf-8"), expected) for n in notifications]
    return bool(checked) and all(checked)


@dataclass(frozen=True)
class RecordBatch:
    """One ``syncRecords`` message and the id that lets Service Bus drop a resent copy."""

    request: SyncRecordsRequest
    message_id: str


@dataclass(frozen=True)
class IgnoredNotification:
    """A notification that leads to no sync, and why (for the log)."""

    resource: str
    change_type: str
    reason: str


@dataclass(frozen=True)
class NotificationPlan:
    """What one webhook POST asks for."""

    batches: tuple[RecordBatch, ...] = ()
    full_syncs: tuple[str, ...] = ()  # mappings to sync incrementally as a whole ("collection")
    ignored: tuple[IgnoredNotification, ...] = ()


def _flows(mapping: TableMapping, direction: SyncDirection) -> bool:
    return mapping.allows(direction) and bool(mapping.fields_for(direction))


def webhook_mappings(mappings: Iterable[TableMapping]) -> dict[str, list[TableMapping]]:
    """BC entity sets worth a subscription → the mappings a change there syncs toward Sales."""
    by_set: dict[str, list[TableMapping]] = {}
    for mapping in mappings:
        if mapping.bc_entity_set in WEBHOOK_RESOURCES and _flows(mapping, SyncDirection.TO_DATAVERSE):
            by_set.setdefault(mapping.bc_entity_set, []).append(mapping)
    return by_set


def _message_id(request: SyncRecordsRequest, stamps: Iterable[str]) -> str:
    # The same POST resent by BC (it retries 408/429/5xx) gives the same id; a later change of
    # the same record has a later lastModifiedDateTime and so a new id.
    canonical = json.dumps([request.to_json(), sorted(stamps)], sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def plan_bc_notifications(
    notifications: Sequence[BcNotification],
    mappings: Iterable[TableMapping],
    *,
    company_id: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> NotificationPlan:
    """Route notifications to per-mapping ``syncRecords`` batches and collection syncs.

    Ids are deduplicated (case-insensitively) in arrival order. A mapping with a collection
    notification in the same POST gets the full incremental sync only: it covers the records.
    Deletes are ignored: the connector never propagates deletes automatically (behaviour §2.11).
    """
    by_set = webhook_mappings(mappings)
    company = company_id.lower()
    ids: dict[str, dict[str, None]] = {}  # mapping → ordered set of BC ids
    stamps: dict[str, list[str]] = {}
    full: dict[str, None] = {}
    ignored: list[IgnoredNotification] = []
    for notification in notifications:
        path = parse_resource(notification.resource)

        def ignore(reason: str, n: BcNotification = notification) -> None:
            ignored.append(IgnoredNotification(n.resource, n.change_type, reason))

        if path is None:
            ignore("not an API v2.0 company resource")
        elif path.company_id != company:
            ignore("another company")
        elif path.entity_set not in by_set:
            ignore("no mapping syncs this entity set toward Dataverse")
        elif notification.change_type == CHANGE_DELETED:
            ignore("deletes are not propagated automatically")
        elif notification.change_type == CHANGE_COLLECTION or (
            path.record_id is None and notification.change_type in (CHANGE_CREATED, CHANGE_UPDATED)
        ):
            full.update((m.name, None) for m in by_set[path.entity_set])
        elif notification.change_type not in (CHANGE_CREATED, CHANGE_UPDATED) or path.record_id is None:
            ignore(f"unknown change type {notification.change_type!r}")
        else:
            for mapping in by_set[path.entity_set]:
                ids.setdefault(mapping.name, {})[path.record_id] = None
                stamps.setdefault(mapping.name, []).append(notification.last_modified)
    batches = []
    for name, record_ids in ids.items():
        if name in full:
            continue
        ordered, size = list(record_ids), max(1, batch_size)
        for start in range(0, len(ordered), size):
            request = SyncRecordsRequest(name, SyncDirection.TO_DATAVERSE, tuple(ordered[start : start + size]))
            batches.append(RecordBatch(request, _message_id(request, stamps[name])))
    return NotificationPlan(tuple(batches), tuple(full), tuple(ignored))


# -- Dataverse RemoteExecutionContext -------------------------------------------------------------
@dataclass(frozen=True)
class DataverseEvent:
    """The parts of a RemoteExecutionContext the connector acts on."""

    message: str  # Create, Update, Delete, ...
    entity: str  # logical name
    record_id: str
    initiating_user_id: str | None
    user_id: str | None
    correlation_id: str = ""

    @property
    def initiator(self) -> str | None:
        """Who caused the change: the initiating user, else the user the operation ran as."""
        return self.initiating_user_id or self.user_id


def _malformed_event(reason: str) -> PermanentError:
    return PermanentError(f"malformed Dataverse event: {reason}", code="MalformedMessage")


def parse_remote_execution_context(body: bytes) -> DataverseEvent:
    """Parse the JSON RemoteExecutionContext of a Dataverse service-endpoint message.

    Raises:
        PermanentError: ``MalformedMessage`` naming what is wrong (a binary .NET or XML context
            means the endpoint was registered with another message format).
    """
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        raise _malformed_event("not JSON (is the service endpoint's message format Json?)") from None
    if not isinstance(document, dict):
        raise _malformed_event("not a JSON object")
    message, entity = document.get("MessageName"), document.get("PrimaryEntityName")
    if not isinstance(message, str) or not message.strip():
        raise _malformed_event("MessageName is missing")
    if not isinstance(entity, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", entity.strip()):
        raise _malformed_event("PrimaryEntityName is missing or not a logical name")
    record_id = _guid(document.get("PrimaryEntityId"))
    if record_id is None:
        raise _malformed_event("PrimaryEntityId is not a GUID")
    users = {}
    for name in ("InitiatingUserId", "UserId"):
        value = document.get(name)
        users[name] = _guid(value)
        if value not in (None, "") and users[name] is None:
            raise _malformed_event(f"{name} is not a GUID")
    if users["InitiatingUserId"] is None and users["UserId"] is None:
        raise _malformed_event("neither InitiatingUserId nor UserId is given")
    correlation = document.get("CorrelationId")
    return DataverseEvent(
        message=message.strip(),
        entity=entity.strip(),
        record_id=record_id,
        initiating_user_id=users["InitiatingUserId"],
        user_id=users["UserId"],
        correlation_id=correlation if isinstance(correlation, str) else "",
    )


def dataverse_push_mappings(mappings: Iterable[TableMapping]) -> list[TableMapping]:
    """Table mappings whose Dataverse changes sync toward BC (option mappings have no rows to push)."""
    return [m for m in mappings if "." not in m.dataverse_entity_set and _flows(m, SyncDirection.FROM_DATAVERSE)]


@dataclass(frozen=True)
class EventPlan:
    """What one Dataverse event asks for: requests to run, or why it is skipped."""

    requests: tuple[SyncRecordsRequest, ...] = ()
    skipped: str = ""


def plan_dataverse_event(
    event: DataverseEvent,
    mappings: Iterable[TableMapping],
    *,
    logical_names: Mapping[str, str],
    application_user_id: str | None,
) -> EventPlan:
    """Route an event to ``syncRecords`` requests toward BC, one per mapping of its table.

    ``logical_names`` maps each mapping's Dataverse entity set to its table's logical name.
    The echo rule: a change the connector's own application user made is its own sync's write
    and goes nowhere.
    """
    if event.message not in PUSHED_MESSAGES:
        return EventPlan(skipped=f"{event.message} is not synchronized automatically")
    if application_user_id and event.initiator == application_user_id.lower():
        return EventPlan(skipped="made by the connector itself")
    requests = tuple(
        SyncRecordsRequest(m.name, SyncDirection.FROM_DATAVERSE, (event.record_id,))
        for m in dataverse_push_mappings(mappings)
        if logical_names.get(m.dataverse_entity_set) == event.entity
    )
    return EventPlan(requests) if requests else EventPlan(skipped=f"no mapping syncs {event.entity} toward BC")


# -- what the connector registers in Dataverse ----------------------------------------------------
@dataclass(frozen=True)
class ServiceEndpoint:
    """A Dataverse ``serviceendpoint`` posting JSON contexts to one Service Bus queue (contract Queue).

    ``auth_type`` 2 (SAS Key) names the namespace, key name and key, as the Plug-in Registration
    Tool registers it; 7 (Connection String) carries the whole connection string, the only way
    to reach a local Service Bus emulator (it needs ``UseDevelopmentEmulator=true``).
    """

    name: str
    namespace_address: str
    path: str
    auth_type: int
    sas_key_name: str = ""
    sas_key: str = field(default="", repr=False)
    auth_value: str = field(default="", repr=False)
    description: str = ""
    contract: int = 2  # Queue
    message_format: int = 2  # Json
    user_claim: int = 1  # None: the context already names the users


@dataclass(frozen=True)
class ProcessingStep:
    """An asynchronous post-operation ``sdkmessageprocessingstep`` handled by a service endpoint."""

    name: str
    message: str
    entity: str
    filtering_attributes: tuple[str, ...] = ()  # Update only: changes elsewhere are not posted
    stage: int = 40  # PostOperation
    mode: int = 1  # asynchronous: Service Bus steps must be
    rank: int = 1
    description: str = ""


def _connection_parts(connection_string: str) -> dict[str, str]:
    parts = {}
    for piece in connection_string.split(";"):
        key, separator, value = piece.partition("=")
        if separator:
            parts[key.strip().lower()] = value.strip()
    return parts


def service_endpoint_for(name: str, connection_string: str, queue: str) -> ServiceEndpoint:
    """The service endpoint for ``queue`` from a Service Bus connection string (send rights suffice).

    Raises:
        ConfigurationError: the connection string lacks a part, or is scoped to another queue.
    """
    parts = _connection_parts(connection_string)
    missing = [k for k in ("endpoint", "sharedaccesskeyname", "sharedaccesskey") if not parts.get(k)]
    if missing:
        raise ConfigurationError(
            f"DATAVERSE_SERVICEBUS_CONNECTION lacks {', '.join(missing)} (a Service Bus SAS connection string)",
            code="InvalidSettings",
        )
    entity_path = parts.get("entitypath")
    if entity_path and entity_path != queue:
        raise ConfigurationError(
            f"DATAVERSE_SERVICEBUS_CONNECTION is scoped to queue {entity_path!r}, not {queue!r}",
            code="InvalidSettings",
        )
    description = f"Posts Dataverse changes to the BC connector's {queue} queue (registered by the connector)."
    if parts.get("usedevelopmentemulator", "").lower() == "true":
        return ServiceEndpoint(
            name, parts["endpoint"], queue, auth_type=7, auth_value=connection_string, description=description
        )
    address = parts["endpoint"] if parts["endpoint"].endswith("/") else parts["endpoint"] + "/"
    return ServiceEndpoint(
        name,
        address,
        queue,
        auth_type=2,
        sas_key_name=parts["sharedaccesskeyname"],
        sas_key=parts["sharedaccesskey"],
        description=description,
    )


def step_name(message: str, entity: str, queue: str) -> str:
    """The name the connector gives (and finds) its step by: unique per message, table and queue."""
    return f"BC connector: {message} of {entity} to {queue}"
