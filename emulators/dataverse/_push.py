"""Outbound push (wire-protocols §C): registered steps post a RemoteExecutionContext.

After a request commits, every enabled ``sdkmessageprocessingstep`` whose message and primary
entity match (and, for Update, whose ``filteringattributes`` intersect the changed columns) gets
the event, asynchronously like an async step:

* webhook endpoints (contract 8): HTTP POST of the JSON context with the ``x-ms-dynamics-*``
  headers, a 60 s timeout and one retry on 502/503/504; over 256 KB the context loses its
  parameters and images and ``x-ms-dynamics-msg-size-exceeded`` is set;
* queue/topic endpoints (contracts 2, 5, 6): a Service Bus message (``application/json``, the
  Dataverse property bag) sent with the ``azure-servicebus`` SDK; over 192 KB the same trimming
  and a ``MessageMaxSizeExceeded`` property.

Images: Pre (key ``PreBusinessEntity``) and Post (key ``AsynchronousStepPrimaryName``) carry the
whole row; the emulator has no ``sdkmessageprocessingstepimage`` table to narrow them.
Every delivery attempt is logged for the back door (``GET /_emulator/pushes``).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from ._entities import BY_LOGICAL_NAME
from ._model import LOOKUP_TYPES, OPTION_TYPES, AttrType
from ._store import Row

if TYPE_CHECKING:
    from ._service import DataverseApi, Event

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"
CLAIMS = "http://schemas.microsoft.com/xrm/2011/Claims"
WEBHOOK_LIMIT = 256 * 1024
SERVICE_BUS_LIMIT = 192 * 1024
WEBHOOK_TIMEOUT = 60.0
_SETTING_RE = re.compile(r'<setting\s+name="([^"]*)"\s+value="([^"]*)"\s*/>')


def _date(text: str | None) -> str | None:
    if text is None:
        return None
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return f"/Date({int(stamp.timestamp() * 1000)})/"


def _entity(logical: str, row: Row, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    definition = BY_LOGICAL_NAME[logical]
    attributes = []
    formatted = []
    for name, value in row.items():
        if value is None or (only is not None and name not in only):
            continue
        attribute = definition.attributes.get(name)
        if attribute is None:
            continue
        if attribute.type in LOOKUP_TYPES and isinstance(value, dict):
            wire: Any = {
                "__type": f"EntityReference:{CONTRACTS}",
                "Id": value["id"],
                "KeyAttributes": [],
                "LogicalName": value["entity"],
                "Name": None,
                "RowVersion": None,
            }
        elif attribute.type in OPTION_TYPES:
            wire = {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}
            formatted.append({"key": name, "value": attribute.options.get(int(value), str(value))})
        elif attribute.type == AttrType.MONEY:
            wire = {"__type": f"Money:{CONTRACTS}", "Value": value}
        elif attribute.type == AttrType.DATETIME:
            wire = _date(str(value))
        else:
            wire = value
        attributes.append({"key": name, "value": wire})
    return {
        "__type": f"Entity:{CONTRACTS}",
        "Attributes": attributes,
        "EntityState": None,
        "FormattedValues": formatted,
        "Id": row[definition.primary_id],
        "KeyAttributes": [],
        "LogicalName": logical,
        "RelatedEntities": [],
        "RowVersion": str(row.get("versionnumber")),
    }


class Publisher:
    """Matches committed events to registered steps and delivers them on background threads."""

    def __init__(self, api: DataverseApi) -> None:
        self.api = api
        self.log: deque[dict[str, Any]] = deque(maxlen=500)
        api.push_log = self.log  # type: ignore[attr-defined]  # read by the back door

    def __call__(self, events: list[Event]) -> None:
        for event in events:
            for step, endpoint in self._steps_for(event):
                context = self.context(event, step)
                thread = threading.Thread(target=self._deliver, args=(endpoint, context, event), daemon=True)
                thread.start()

    def _steps_for(self, event: Event) -> list[tuple[Row, Row]]:
        store = self.api.store
        matches: list[tuple[Row, Row]] = []
        with store.lock:
            for step in store.peek_rows("sdkmessageprocessingstep"):
                if step.get("statecode") != 0:
                    continue
                message_ref, filter_ref, handler = (
                    step.get("sdkmessageid"),
                    step.get("sdkmessagefilterid"),
                    step.get("eventhandler"),
                )
                if not isinstance(message_ref, dict) or not isinstance(handler, dict):
                    continue
                message = store.get("sdkmessage", message_ref["id"])
                if message is None or message.get("name") != event.message:
                    continue
                if isinstance(filter_ref, dict):
                    message_filter = store.get("sdkmessagefilter", filter_ref["id"])
                    if message_filter is None or message_filter.get("primaryobjecttypecode") != event.entity:
                        continue
                attributes = {a.strip() for a in str(step.get("filteringattributes") or "").split(",") if a.strip()}
                if event.message == "Update" and attributes and not attributes & set(event.changed):
                    continue
                endpoint = (
                    store.get("serviceendpoint", handler["id"]) if handler["entity"] == "serviceendpoint" else None
                )
                if endpoint is not None:
                    matches.append((copy.deepcopy(step), endpoint))
        return matches

    def context(self, event: Event, step: Row) -> dict[str, Any]:
        """The JSON RemoteExecutionContext of ``event`` for ``step`` (wire-protocols §C.3)."""
        api = self.api
        target_row = event.post if event.post is not None else event.pre
        assert target_row is not None
        if event.message == "Delete":
            definition = BY_LOGICAL_NAME[event.entity]
            target: Any = {
                "__type": f"EntityReference:{CONTRACTS}",
                "Id": event.id,
                "KeyAttributes": [],
                "LogicalName": event.entity,
                "Name": None,
                "RowVersion": None,
            }
            del definition
        else:
            submitted = event.changed if event.message == "Update" else None
            if submitted is not None:
                submitted = (*submitted, "modifiedon", "modifiedby", BY_LOGICAL_NAME[event.entity].primary_id)
            target = _entity(event.entity, target_row, submitted)
        output = [{"key": "id", "value": event.id}] if event.message == "Create" else []
        return {
            "BusinessUnitId": api.business_unit_id,
            "CorrelationId": str(uuid.uuid4()),
            "Depth": 1,
            "InitiatingUserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
            "InitiatingUserId": event.user,
            "InputParameters": [{"key": "Target", "value": target}],
            "IsExecutingOffline": False,
            "IsInTransaction": False,
            "IsOfflinePlayback": False,
            "IsolationMode": 1,
            "MessageName": event.message,
            "Mode": int(step.get("mode") or 1),
            "OperationCreatedOn": f"/Date({int(time.time() * 1000)}+0000)/",
            "OperationId": str(uuid.uuid4()),
            "OrganizationId": api.organization_id,
            "OrganizationName": urlsplit(api.org_url).netloc,
            "OutputParameters": output,
            "OwningExtension": {
                "Id": step["sdkmessageprocessingstepid"],
                "KeyAttributes": [],
                "LogicalName": "sdkmessageprocessingstep",
                "Name": step.get("name"),
                "RowVersion": None,
            },
            "ParentContext": None,
            "PostEntityImages": [{"key": "AsynchronousStepPrimaryName", "value": _entity(event.entity, event.post)}]
            if event.post is not None
            else [],
            "PreEntityImages": [{"key": "PreBusinessEntity", "value": _entity(event.entity, event.pre)}]
            if event.pre is not None
            else [],
            "PrimaryEntityId": event.id,
            "PrimaryEntityName": event.entity,
            "RequestId": str(uuid.uuid4()),
            "SecondaryEntityName": "none",
            "SharedVariables": [],
            "Stage": int(step.get("stage") or 40),
            "UserAzureActiveDirectoryObjectId": "00000000-0000-0000-0000-000000000000",
            "UserId": event.user,
        }

    @staticmethod
    def _trim(context: dict[str, Any], limit: int) -> tuple[bytes, bool]:
        body = json.dumps(context).encode("utf-8")
        if len(body) <= limit:
            return body, False
        for name in ("InputParameters", "PreEntityImages", "PostEntityImages"):
            context[name] = []
        context["ParentContext"] = None
        return json.dumps(context).encode("utf-8"), True

    def _record(self, endpoint: Row, event: Event, **details: Any) -> None:
        self.log.append(
            {
                "endpoint": endpoint["serviceendpointid"],
                "contract": endpoint.get("contract"),
                "message": event.message,
                "entity": event.entity,
                "id": event.id,
                "at": time.time(),
                **details,
            }
        )

    def _deliver(self, endpoint: Row, context: dict[str, Any], event: Event) -> None:
        contract = endpoint.get("contract")
        try:
            if contract == 8:
                self._webhook(endpoint, context, event)
            elif contract in (2, 5, 6):
                self._service_bus(endpoint, context, event)
            else:
                self._record(endpoint, event, outcome="unsupported", detail=f"contract {contract} is not emulated")
        except Exception as exc:  # a failed async step is logged, never raised into the server
            self._record(endpoint, event, outcome="failed", detail=f"{type(exc).__name__}: {exc}")

    def _webhook(self, endpoint: Row, context: dict[str, Any], event: Event) -> None:
        body, exceeded = self._trim(context, WEBHOOK_LIMIT)
        headers = {"Content-Type": "application/json"}
        if exceeded:
            headers["x-ms-dynamics-msg-size-exceeded"] = "true"
        else:
            headers.update(
                {
                    "x-ms-dynamics-organization": urlsplit(self.api.org_url).netloc,
                    "x-ms-dynamics-entity-name": event.entity,
                    "x-ms-dynamics-request-name": event.message,
                    "x-ms-correlation-request-id": str(context["CorrelationId"]),
                }
            )
        url = str(endpoint.get("url") or "")
        params: dict[str, str] = {}
        settings = dict(_SETTING_RE.findall(str(endpoint.get("authvalue") or "")))
        if endpoint.get("authtype") == 4:
            params["code"] = str(endpoint.get("authvalue") or "")
        elif endpoint.get("authtype") == 5:
            headers.update(settings)
        elif endpoint.get("authtype") == 6:
            params.update(settings)
        session = requests.Session()
        session.trust_env = False
        status = 0
        for attempt in (1, 2):
            response = session.post(url, data=body, headers=headers, params=params, timeout=WEBHOOK_TIMEOUT)
            status = response.status_code
            self._record(
                endpoint,
                event,
                outcome="delivered" if 200 <= status < 300 else "failed",
                status=status,
                attempt=attempt,
                size_exceeded=exceeded,
            )
            if status not in (502, 503, 504):
                break

    def _service_bus(self, endpoint: Row, context: dict[str, Any], event: Event) -> None:
        from azure.servicebus import ServiceBusClient, ServiceBusMessage

        body, exceeded = self._trim(context, SERVICE_BUS_LIMIT)
        if endpoint.get("authtype") == 7:
            connection = str(endpoint.get("authvalue") or "")
        else:
            connection = (
                f"Endpoint={endpoint.get('namespaceaddress')};SharedAccessKeyName={endpoint.get('saskeyname')};"
                f"SharedAccessKey={endpoint.get('saskey')}"
            )
        properties: dict[str | bytes, Any] = {
            f"{CLAIMS}/Organization": urlsplit(self.api.org_url).netloc,
            f"{CLAIMS}/EntityLogicalName": event.entity,
            f"{CLAIMS}/RequestName": event.message,
            f"{CLAIMS}/InitiatingUser": event.user,
            f"{CLAIMS}/User": event.user,
        }
        if exceeded:
            properties["MessageMaxSizeExceeded"] = True
        message = ServiceBusMessage(body, content_type="application/json", application_properties=properties)
        with ServiceBusClient.from_connection_string(connection) as client:
            path = str(endpoint.get("path") or "")
            sender = client.get_topic_sender(path) if endpoint.get("contract") == 5 else client.get_queue_sender(path)
            with sender:
                sender.send_messages(message)
        self._record(endpoint, event, outcome="delivered", size_exceeded=exceeded)
