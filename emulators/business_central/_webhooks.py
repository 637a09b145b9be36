"""Webhook subscriptions (``/api/v2.0/subscriptions``) and notification delivery.

- Create and renew (PATCH with If-Match) call ``notificationUrl?validationToken=<t>`` and need a 200
  whose body is the token before answering; 3-day expiry; at most 200 subscriptions.
- Changes are coalesced per subscription for ``window`` seconds after the first one (30 s in BC);
  more than 1,000 changes for one notification URL in a window become one ``collection``
  notification with a ``lastModifiedDateTime gt`` filter. Line changes arrive as header updates
  (the API announces them that way). One POST per notification URL carries every subscription's
  notifications.
- Delivery failure: 408, 429, 5xx or no answer → retry with backoff over a 36-hour horizon (both
  on the cost model's server clock); any other non-2xx → the subscription is deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from werkzeug.wrappers import Request, Response

from emulators._http import json_response
from emulators.business_central._errors import BcError
from emulators.business_central._schema import entity_by_set
from emulators.business_central._store import Record, format_ms

if TYPE_CHECKING:
    from emulators.business_central._api import BcApi, _Call

__all__ = ["Webhooks"]

_RESOURCE = re.compile(r"(?:^|/)api/v2\.0/companies\((?P<company>[0-9a-fA-F-]{36})\)/(?P<set>[A-Za-z]+)/?$")
_RETRYABLE = {408, 429}
_BACKOFF = (60.0, 300.0, 900.0, 3600.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0)  # server seconds
_HORIZON = 36 * 3600.0
_EXPIRY = 3 * 24 * 3600.0
MAX_SUBSCRIPTIONS = 200
COLLECTION_THRESHOLD = 1000


@dataclass
class _Pending:
    first_at: float  # real monotonic time of the first change in this window
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id → notification


@dataclass
class _Delivery:
    url: str
    subscription_ids: list[str]
    payload: dict[str, Any]
    first_attempt: float  # server time
    attempts: int = 0
    next_at: float = 0.0  # real monotonic time


class Webhooks:
    """Subscriptions and the background deliverer of one emulator."""

    def __init__(self, api: BcApi, *, window: float = 30.0, handshake_method: str = "POST") -> None:
        self.api = api
        self.store = api.store
        self.window = window
        self.handshake_method = handshake_method
        self.timeout = 10.0
        self.expiry = _EXPIRY
        self._pending: dict[str, _Pending] = {}
        self._deliveries: list[_Delivery] = []
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.store.listeners.append(self._on_change)
        threading.Thread(target=self._run, name="bc-webhooks", daemon=True).start()

    # -- HTTP: /subscriptions ------------------------------------------------------------------------
    def handle(self, call: _Call, parsed: list[tuple[str, str | None]]) -> Response:
        """CRUD on subscriptions (string keys)."""
        entity = entity_by_set("subscriptions")
        assert entity is not None
        if len(parsed) > 1:
            raise BcError(400, "BadRequest", "Subscriptions have no navigation properties.")
        key = parsed[0][1]
        context = f"{call.base_url}/$metadata#subscriptions"
        if key is None:
            if call.method == "GET":
                with self.store.lock:
                    rows = [self._public(s) for s in self.store.subscriptions.values() if not self._expired(s)]
                return _json(200, {"@odata.context": context, "value": rows})
            if call.method == "POST":
                return self._create(call, context)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on subscriptions.")
        subscription_id = key.strip("'")
        with self.store.lock:
            subscription = self.store.subscriptions.get(subscription_id)
        if subscription is None or self._expired(subscription):
            raise BcError(
                404,
                "BadRequest_NotFound",
                f"The subscription does not exist. Identification fields and values: Id='{subscription_id}'",
            )
        if call.method == "GET":
            return _json(200, {"@odata.context": f"{context}/$entity", **self._public(subscription)})
        if call.method == "DELETE":
            with self.store.lock:
                self.store.subscriptions.pop(subscription_id, None)
            return Response(status=204)
        if call.method == "PATCH":
            return self._renew(call, subscription, context)
        raise BcError(405, "BadRequest_MethodNotAllowed", f"'{call.method}' is not allowed on a subscription.")

    def _create(self, call: _Call, context: str) -> Response:
        body = self.api._json_body(call)
        allowed = {"notificationUrl", "resource", "clientState"}
        unknown = set(body) - allowed - {"@odata.etag"}
        if unknown:
            raise BcError(400, "BadRequest", f"The property '{sorted(unknown)[0]}' cannot be set on subscriptions.")
        url, resource = body.get("notificationUrl"), body.get("resource")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BcError(400, "BadRequest_RequiredParamNotProvided", "A valid notificationUrl is required.")
        if not isinstance(resource, str):
            raise BcError(400, "BadRequest_RequiredParamNotProvided", "The resource is required.")
        client_state = body.get("clientState", "")
        if not isinstance(client_state, str) or len(client_state) > 2048:
            raise BcError(400, "Application_StringExceededLength", "The clientState can be at most 2048 characters.")
        company, set_name = self._parse_resource(resource)
        with self.store.lock:
            live = [s for s in self.store.subscriptions.values() if not self._expired(s)]
            if len(live) >= MAX_SUBSCRIPTIONS:
                raise BcError(
                    400, "BadRequest", f"The maximum number of subscriptions ({MAX_SUBSCRIPTIONS}) has been reached."
                )
        # The handshake runs without the store lock: the subscriber may call us back while answering.
        self._handshake(url)
        now = self.store.now()
        record: Record = {
            "subscriptionId": uuid.uuid4().hex,
            "notificationUrl": url,
            "resource": resource,
            "clientState": client_state,
            "userId": str(uuid.UUID(int=0)) if not call.user else call.user,
            "timestamp": int(time.time() * 1000),
            "lastModifiedDateTime": format_ms(now),
            "expirationDateTime": _iso(now + dt.timedelta(seconds=self._scaled(self.expiry))),
            "systemCreatedAt": format_ms(now),
            "systemCreatedBy": call.user,
            "systemModifiedAt": format_ms(now),
            "systemModifiedBy": call.user,
            "_company": company,
            "_set": set_name,
            "_expires_at": time.monotonic() + self._scaled(self.expiry),
        }
        self.store.stamp(record)
        with self.store.lock:
            self.store.subscriptions[record["subscriptionId"]] = record
        return _json(
            201, {"@odata.context": f"{context}/$entity", **self._public(record)}, {"ETag": self.store.etag(record)}
        )

    def _renew(self, call: _Call, subscription: Record, context: str) -> Response:
        supplied = call.headers.get("If-Match")
        if supplied is None:
            raise BcError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a "
                "valid token in the client request.",
            )
        if supplied != "*" and supplied != self.store.etag(subscription):
            raise BcError(
                self.api.settings.stale_etag_status,
                "Request_EntityChanged",
                "Another user has already changed the record.",
            )
        body = self.api._json_body(call)
        unknown = set(body) - {"notificationUrl", "clientState", "resource", "@odata.etag"}
        if unknown:
            raise BcError(400, "BadRequest", f"The property '{sorted(unknown)[0]}' cannot be changed.")
        if "resource" in body and body["resource"] != subscription["resource"]:
            raise BcError(400, "BadRequest", "The resource of a subscription cannot be changed.")
        url = str(body.get("notificationUrl", subscription["notificationUrl"]))
        self._handshake(url)
        now = self.store.now()
        with self.store.lock:
            subscription["notificationUrl"] = url
            if "clientState" in body:
                subscription["clientState"] = str(body["clientState"])
            subscription["expirationDateTime"] = _iso(now + dt.timedelta(seconds=self._scaled(self.expiry)))
            subscription["_expires_at"] = time.monotonic() + self._scaled(self.expiry)
            subscription["systemModifiedAt"] = format_ms(now)
            self.store.stamp(subscription)
        return _json(
            200,
            {"@odata.context": f"{context}/$entity", **self._public(subscription)},
            {"ETag": self.store.etag(subscription)},
        )

    def _parse_resource(self, resource: str) -> tuple[str, str]:
        path = re.sub(r"^https?://[^/]+", "", resource.split("?", maxsplit=1)[0])
        match = _RESOURCE.search(path)
        if match is None:
            raise BcError(400, "BadRequest", f"The resource '{resource}' is not a valid subscription resource.")
        company = match["company"].lower()
        if company not in self.store.companies:
            raise BcError(404, "Internal_CompanyNotFound", f"The company '{company}' does not exist.")
        entity = entity_by_set(match["set"])
        if entity is None or not entity.webhooks:
            raise BcError(
                400,
                "BadRequest",
                f"The entity '{match['set']}' does not support webhooks. See webhookSupportedResources.",
            )
        return company, entity.set_name

    def _handshake(self, url: str) -> None:
        token = secrets.token_urlsafe(24)
        separator = "&" if "?" in url else "?"
        try:
            answer = requests.request(
                self.handshake_method, f"{url}{separator}validationToken={quote(token)}", timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise BcError(
                400, "BadRequest", f"The notification URL could not be reached for the handshake: {type(exc).__name__}."
            ) from exc
        text = answer.text.strip()
        if text.startswith('"'):
            with contextlib.suppress(ValueError):  # a JSON-quoted token is accepted too
                text = str(json.loads(text))
        if answer.status_code != 200 or text != token:
            raise BcError(
                400,
                "BadRequest",
                f"The subscription handshake failed: the notification URL answered {answer.status_code} "
                "without the validation token.",
            )

    def _public(self, subscription: Record) -> Record:
        entity = entity_by_set("subscriptions")
        assert entity is not None
        out: Record = {"@odata.etag": self.store.etag(subscription)}
        out.update({f.name: subscription.get(f.name, f.blank()) for f in entity.fields})
        return out

    def _expired(self, subscription: Record) -> bool:
        return time.monotonic() >= float(subscription["_expires_at"])

    def _scaled(self, server_seconds: float) -> float:
        return self.api.server.costs.to_real(server_seconds)

    # -- change events -----------------------------------------------------------------------------------
    def _on_change(self, company: str, set_name: str, record_id: str, change: str) -> None:
        # Called under the store lock by whatever wrote the record.
        subscriptions = [
            s
            for s in self.store.subscriptions.values()
            if s["_company"] == company and s["_set"] == set_name and not self._expired(s)
        ]
        if not subscriptions:
            return
        record = self.store.tables.get(company, {}).get(set_name, {}).get(record_id, {})
        stamp = record.get("lastModifiedDateTime") or format_ms(self.store.now())
        with self._lock:
            for subscription in subscriptions:
                pending = self._pending.setdefault(subscription["subscriptionId"], _Pending(time.monotonic()))
                previous = pending.changes.get(record_id)
                change_type = change
                if previous is not None and previous["changeType"] == "created" and change == "updated":
                    change_type = "created"
                if previous is not None and previous["changeType"] == "created" and change == "deleted":
                    pending.changes.pop(record_id)
                    continue
                pending.changes[record_id] = {
                    "resource": f"api/v2.0/companies({company})/{set_name}({record_id})",
                    "changeType": change_type,
                    "lastModifiedDateTime": stamp,
                }
        self._wake.set()

    # -- delivery ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=min(0.1, max(self.window / 4, 0.01)))
            self._wake.clear()
            try:
                self._collect_due()
                self._send_due()
            except Exception as exc:
                self.log.append({"error": f"{type(exc).__name__}: {exc}"})

    def flush(self) -> None:
        """Deliver everything pending now (back door: tests need not wait for the window)."""
        with self._lock:
            for pending in self._pending.values():
                pending.first_at = 0.0
        self._collect_due()
        self._send_due(force=True)

    def _collect_due(self) -> None:
        now = time.monotonic()
        by_url: dict[str, list[tuple[Record, list[dict[str, Any]]]]] = {}
        with self.store.lock, self._lock:
            for subscription_id in list(self._pending):
                pending = self._pending[subscription_id]
                if now - pending.first_at < self.window:
                    continue
                del self._pending[subscription_id]
                subscription = self.store.subscriptions.get(subscription_id)
                if subscription is None or self._expired(subscription) or not pending.changes:
                    continue
                by_url.setdefault(subscription["notificationUrl"], []).append(
                    (subscription, list(pending.changes.values()))
                )
            for url, entries in by_url.items():
                total = sum(len(changes) for _, changes in entries)
                notifications = []
                for subscription, changes in entries:
                    common = {
                        "subscriptionId": subscription["subscriptionId"],
                        "clientState": subscription["clientState"],
                        "expirationDateTime": subscription["expirationDateTime"],
                    }
                    if total > COLLECTION_THRESHOLD:
                        since = min(c["lastModifiedDateTime"] for c in changes)
                        notifications.append(
                            {
                                **common,
                                "resource": f"/api/v2.0/companies({subscription['_company']})/{subscription['_set']}"
                                f"?$filter=lastModifiedDateTime%20gt%20{since}",
                                "changeType": "collection",
                                "lastModifiedDateTime": since,
                            }
                        )
                    else:
                        notifications += [{**common, **change} for change in changes]
                self._deliveries.append(
                    _Delivery(
                        url=url,
                        subscription_ids=[s["subscriptionId"] for s, _ in entries],
                        payload={"value": notifications},
                        first_attempt=self.api.server.costs.now(),
                    )
                )

    def _send_due(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            due = [d for d in self._deliveries if force or d.next_at <= now]
            for delivery in due:
                self._deliveries.remove(delivery)
        for delivery in due:
            self._send(delivery)

    def _send(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        try:
            answer = requests.post(delivery.url, json=delivery.payload, timeout=self.timeout)
            status: int | None = answer.status_code
        except requests.RequestException:
            status = None
        self.log.append(
            {
                "url": delivery.url,
                "status": status,
                "attempt": delivery.attempts,
                "notifications": len(delivery.payload["value"]),
            }
        )
        if status is not None and 200 <= status < 300:
            return
        if status is None or status in _RETRYABLE or status >= 500:
            costs = self.api.server.costs
            elapsed = costs.now() - delivery.first_attempt
            backoff = _BACKOFF[min(delivery.attempts - 1, len(_BACKOFF) - 1)]
            if elapsed + backoff <= _HORIZON:
                delivery.next_at = time.monotonic() + costs.to_real(backoff)
                with self._lock:
                    self._deliveries.append(delivery)
            return
        # Any other answer means "go away": BC deletes the subscription.
        with self.store.lock:
            for subscription_id in delivery.subscription_ids:
                self.store.subscriptions.pop(subscription_id, None)

    # -- back door ---------------------------------------------------------------------------------------
    def admin(self, action: str, request: Request) -> Response:
        """``webhooks`` (GET state, PATCH settings) and ``webhooks/flush``."""
        if action == "webhooks/flush":
            self.flush()
            return json_response(200, {"log": self.log[-50:]})
        if request.method in ("PATCH", "POST"):
            body = dict(request.get_json(force=True))
            if "window" in body:
                self.window = float(body["window"])
            if "expiry" in body:
                self.expiry = float(body["expiry"])
        with self._lock:
            return json_response(
                200,
                {
                    "window": self.window,
                    "expiry": self.expiry,
                    "pending": {k: len(v.changes) for k, v in self._pending.items()},
                    "queued_deliveries": len(self._deliveries),
                    "log": self.log[-50:],
                },
            )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    response = json_response(status, body, headers)
    response.headers["OData-Version"] = "4.0"
    return response
