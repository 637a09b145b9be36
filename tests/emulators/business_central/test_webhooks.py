"""E.2 items 17-20: subscription handshake, renewal, delivery, coalescing, failure policy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.emulators.business_central.conftest import Bc, assert_bc_error

pytestmark = pytest.mark.stack


class Receiver:
    """A local subscriber: echoes validation tokens, records notifications, answers a chosen status."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.handshakes = 0
        self.status = 202
        self.echo_token = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, text: str = "") -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                token = parse_qs(urlparse(self.path).query).get("validationToken")
                if token:
                    receiver.handshakes += 1
                    self._answer(200, token[0] if receiver.echo_token else "nope")
                    return
                receiver.notifications.append(json.loads(body))
                self._answer(receiver.status)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhooks/bc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.notifications) < count:
            time.sleep(0.05)
        return self.notifications


@pytest.fixture
def receiver(bc: Bc) -> Iterator[Receiver]:
    bc.door.call("PATCH", "webhooks", {"window": 0.3})
    r = Receiver()
    yield r
    for sub in bc.one("/subscriptions")["value"]:
        bc.delete(f"/subscriptions('{sub['subscriptionId']}')")
    r.server.shutdown()
    r.server.server_close()
    bc.door.call("PATCH", "webhooks", {"window": 30})


def _subscribe(bc: Bc, receiver: Receiver, set_name: str = "customers", state: str = "s3cret") -> dict[str, Any]:
    response = bc.post(
        "/subscriptions",
        {
            "notificationUrl": receiver.url,
            "resource": f"/api/v2.0/companies({bc.company_id})/{set_name}",
            "clientState": state,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_subscription_needs_the_handshake(bc: Bc, receiver: Receiver) -> None:
    sub = _subscribe(bc, receiver)
    assert receiver.handshakes == 1
    assert set(sub) >= {
        "subscriptionId",
        "notificationUrl",
        "resource",
        "clientState",
        "expirationDateTime",
        "lastModifiedDateTime",
        "userId",
        "timestamp",
    }
    fetched = bc.one(f"/subscriptions('{sub['subscriptionId']}')")
    assert fetched["clientState"] == "s3cret"
    receiver.echo_token = False
    refused = bc.post(
        "/subscriptions", {"notificationUrl": receiver.url, "resource": f"/api/v2.0/companies({bc.company_id})/items"}
    )
    assert_bc_error(refused, 400, "BadRequest")


def test_unsupported_resources_are_refused(bc: Bc, receiver: Receiver) -> None:
    for set_name in ("contacts", "salesShipments", "customerFinancialDetails", "customerPayments"):
        response = bc.post(
            "/subscriptions",
            {"notificationUrl": receiver.url, "resource": f"/api/v2.0/companies({bc.company_id})/{set_name}"},
        )
        assert_bc_error(response, 400, "BadRequest")
    assert receiver.handshakes == 0


def test_renewal_needs_if_match_and_repeats_the_handshake(bc: Bc, receiver: Receiver) -> None:
    sub = _subscribe(bc, receiver)
    path = f"/subscriptions('{sub['subscriptionId']}')"
    assert_bc_error(bc.patch(path, {"clientState": "x"}), 400, "BadRequest_InvalidToken")
    renewed = bc.patch(path, {"clientState": "new"}, etag=sub["@odata.etag"])
    assert renewed.status_code == 200
    assert renewed.json()["expirationDateTime"] >= sub["expirationDateTime"]
    assert receiver.handshakes == 2


def test_changes_are_delivered_coalesced_with_client_state(bc: Bc, receiver: Receiver) -> None:
    sub = _subscribe(bc, receiver)
    created = bc.post("customers", {"displayName": "Hooked"}).json()
    bc.patch(f"customers({created['id']})", {"city": "Mechelen"}, etag=created["@odata.etag"])
    other = bc.first("customers", "number eq 'C00020'")
    bc.patch(f"customers({other['id']})", {"city": "Leuven"}, etag=other["@odata.etag"])
    posts = receiver.wait_for(1)
    assert len(posts) == 1
    value = posts[0]["value"]
    by_resource = {n["resource"]: n for n in value}
    assert by_resource[f"api/v2.0/companies({bc.company_id})/customers({created['id']})"]["changeType"] == "created"
    assert by_resource[f"api/v2.0/companies({bc.company_id})/customers({other['id']})"]["changeType"] == "updated"
    assert {n["clientState"] for n in value} == {"s3cret"}
    assert {n["subscriptionId"] for n in value} == {sub["subscriptionId"]}


def test_line_change_notifies_the_header(bc: Bc, receiver: Receiver) -> None:
    order = bc.post("salesOrders", {"customerNumber": "C00010"}).json()
    _subscribe(bc, receiver, "salesOrders")
    bc.post(f"salesOrders({order['id']})/salesOrderLines", {"lineType": "Comment", "description": "hi"})
    value = receiver.wait_for(1)[0]["value"]
    assert [(n["resource"].rsplit("/", 1)[1], n["changeType"]) for n in value] == [
        (f"salesOrders({order['id']})", "updated")
    ]


def test_deleted_entities_only_show_in_webhooks(bc: Bc, receiver: Receiver) -> None:
    customer = bc.post("customers", {"displayName": "Soon gone"}).json()
    time.sleep(0.5)
    _subscribe(bc, receiver)
    bc.delete(f"customers({customer['id']})", etag="*")
    value = receiver.wait_for(1)[0]["value"]
    assert value[0]["changeType"] == "deleted"
    assert bc.one("customers", **{"$filter": f"id eq {customer['id']}"})["value"] == []


def test_non_retryable_failure_deletes_the_subscription(bc: Bc, receiver: Receiver) -> None:
    sub = _subscribe(bc, receiver)
    receiver.status = 410
    bc.post("customers", {"displayName": "Rejected"})
    receiver.wait_for(1)
    time.sleep(0.2)
    assert bc.get(f"/subscriptions('{sub['subscriptionId']}')").status_code == 404


def test_retryable_failure_keeps_the_subscription_and_retries(bc: Bc, receiver: Receiver) -> None:
    bc.door.costs(time_scale=600)  # 60 server seconds of backoff pass in 0.1 s
    try:
        sub = _subscribe(bc, receiver)
        receiver.status = 503
        bc.post("customers", {"displayName": "Retried"})
        receiver.wait_for(1)
        receiver.status = 200
        posts = receiver.wait_for(2, timeout=5)
        assert len(posts) >= 2
        assert posts[0] == posts[1]
        assert bc.get(f"/subscriptions('{sub['subscriptionId']}')").status_code == 200
    finally:
        bc.door.costs(time_scale=1)


def test_more_than_1000_changes_become_one_collection_notification(bc: Bc, receiver: Receiver) -> None:
    bc.door.call("PATCH", "webhooks", {"window": 3})
    _subscribe(bc, receiver, "items")
    company = f"companies({bc.company_id})"
    for start in range(0, 1001, 100):
        requests = [
            {"id": str(i), "method": "POST", "url": f"{company}/items", "body": {"displayName": f"Bulk {i}"}}
            for i in range(start, min(start + 100, 1001))
        ]
        assert bc.post("/$batch", {"requests": requests}).status_code == 200
    bc.door.call("POST", "webhooks/flush")
    value = receiver.wait_for(1)[0]["value"]
    assert len(value) == 1
    assert value[0]["changeType"] == "collection"
    assert "$filter=lastModifiedDateTime%20gt%20" in value[0]["resource"]


def test_several_subscriptions_share_one_post(bc: Bc, receiver: Receiver) -> None:
    customers_sub = _subscribe(bc, receiver, "customers", state="a")
    items_sub = _subscribe(bc, receiver, "items", state="b")
    bc.post("customers", {"displayName": "Shared post"})
    bc.post("items", {"displayName": "Shared post item"})
    bc.door.call("POST", "webhooks/flush")
    posts = receiver.wait_for(1)
    assert len(posts) == 1
    assert {n["subscriptionId"] for n in posts[0]["value"]} == {
        customers_sub["subscriptionId"],
        items_sub["subscriptionId"],
    }


def test_expired_subscriptions_stop_delivery(bc: Bc, receiver: Receiver) -> None:
    bc.door.call("PATCH", "webhooks", {"expiry": 0.3})
    try:
        sub = _subscribe(bc, receiver)
        time.sleep(0.4)
        bc.post("customers", {"displayName": "Nobody hears this"})
        time.sleep(0.6)
        assert receiver.notifications == []
        assert bc.get(f"/subscriptions('{sub['subscriptionId']}')").status_code == 404
    finally:
        bc.door.call("PATCH", "webhooks", {"expiry": 259200})
