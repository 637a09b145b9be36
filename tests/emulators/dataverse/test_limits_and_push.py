"""Service protection limits on the time-scale knob (E.1 item 16) and outbound webhook push (item 20)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.emulators.dataverse.conftest import Dv, sid

pytestmark = pytest.mark.stack


def test_request_count_limit_answers_429_with_retry_after_and_recovers(dv: Dv) -> None:
    dv.door.call("PATCH", "limits", {"requests": 3})
    dv.door.costs(time_scale=300.0)  # the 300 s window passes in one real second
    statuses = [dv.get("WhoAmI") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    throttled = statuses[-1]
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert (
        throttled.json()["error"]["message"]
        == "Number of requests exceeded the limit of 3 over time window of 300 seconds."
    )
    assert int(throttled.headers["Retry-After"]) >= 1
    assert statuses[1].headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "1"
    time.sleep(1.2)
    assert dv.get("WhoAmI").status_code == 200


def test_execution_time_limit_and_longer_retry_after_for_repeat_offenders(dv: Dv) -> None:
    dv.door.call("PATCH", "limits", {"execution_seconds": 0.5})
    dv.door.costs(costs={"request": 1.0}, sleep=False)
    assert dv.get("WhoAmI").status_code == 200  # charged after it ran: the limit bites on the next one
    first = dv.get("WhoAmI")
    second = dv.get("WhoAmI")
    assert first.status_code == second.status_code == 429
    assert first.json()["error"]["code"] == "0x80072321"
    assert int(second.headers["Retry-After"]) > int(first.headers["Retry-After"])
    dv.door.costs(costs={"request": 0.005})


def test_concurrency_limit_fails_immediately(dv: Dv) -> None:
    dv.door.call("PATCH", "limits", {"concurrency": 1})
    dv.door.costs(costs={"request": 0.8}, sleep=True)  # each request holds the server for 0.8 s
    try:
        token = dv.token()
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [
                pool.submit(dv.session.get, dv.url("WhoAmI"), headers={"Authorization": f"Bearer {token}"}, timeout=30)
                for _ in range(3)
            ]
            responses = [f.result() for f in futures]
    finally:
        dv.door.costs(costs={"request": 0.005}, sleep=False)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 429, 429]
    rejected = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "0x80072326" for r in rejected)
    assert all(r.elapsed.total_seconds() < 0.7 for r in rejected)


def test_batch_counts_as_one_request_and_dop_hint_is_configurable(dv: Dv) -> None:
    dv.door.call("PATCH", "limits", {"requests": 2, "dop_hint": 12})
    boundary = "batch_x"
    part = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n"
    body = f"--{boundary}\r\n{part}--{boundary}\r\n{part}--{boundary}\r\n{part}--{boundary}--\r\n"
    response = dv.request(
        "POST", "$batch", data=body.encode(), headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}
    )
    assert response.status_code == 200
    assert response.headers["x-ms-dop-hint"] == "12"
    assert dv.get("WhoAmI").status_code == 200
    assert dv.get("WhoAmI").status_code == 429


class _Hook:
    """A local webhook receiver that answers a scripted sequence of statuses."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with hook.arrived:
                    hook.calls.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                    )
                    hook.arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.calls) >= count, timeout=timeout)
        return list(self.calls)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook() -> Iterator[_Hook]:
    receiver = _Hook()
    yield receiver
    receiver.close()


def _register(dv: Dv, url: str, message: str, entity: str, filtering: str | None = None) -> str:
    endpoint = dv.create(
        "serviceendpoints",
        {
            "name": "connector webhook",
            "contract": 8,
            "url": url,
            "authtype": 4,
            "authvalue": "s3cret",
            "messageformat": 2,
        },
    )
    step = dv.create(
        "sdkmessageprocessingsteps",
        {
            "name": f"connector: {message} of {entity}",
            "stage": 40,
            "mode": 1,
            "rank": 1,
            "filteringattributes": filtering,
            "supporteddeployment": 0,
            "sdkmessageid@odata.bind": f"/sdkmessages({sid('sdkmessage', message)})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({sid('sdkmessagefilter', f'{message}:{entity}')})",
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint['serviceendpointid']})",
        },
    )
    return str(step["sdkmessageprocessingstepid"])


def test_update_steps_post_the_remote_execution_context_to_webhooks(dv: Dv, hook: _Hook) -> None:
    step_id = _register(dv, hook.url, "Update", "salesorder", filtering="statecode,name")
    order_id = sid("salesorder", "Bikes for the Adatum fleet")
    assert dv.patch(f"salesorders({order_id})", {"statecode": 0, "statuscode": 1}).status_code == 204
    call = hook.wait_for(1)[0]
    assert call["path"] == "/hook?code=s3cret"
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["x-ms-dynamics-entity-name"] == "salesorder"
    assert headers["x-ms-dynamics-request-name"] == "Update"
    assert headers["x-ms-dynamics-organization"] == dv.line["org_url"].removeprefix("https://")
    context = call["body"]
    assert context["MessageName"] == "Update" and context["PrimaryEntityName"] == "salesorder"
    assert context["PrimaryEntityId"] == order_id and context["Stage"] == 40
    assert context["OwningExtension"]["Id"] == step_id
    assert context["OperationCreatedOn"].startswith("/Date(")
    target = context["InputParameters"][0]
    assert target["key"] == "Target" and target["value"]["__type"].startswith("Entity:")
    attributes = {a["key"]: a["value"] for a in target["value"]["Attributes"]}
    assert attributes["statecode"] == {
        "__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts",
        "Value": 0,
    }
    assert "totalamount" not in attributes  # Update targets carry the submitted columns only
    post_image = context["PostEntityImages"][0]["value"]
    assert {a["key"] for a in post_image["Attributes"]} >= {"totalamount", "ordernumber"}
    customer = next(a["value"] for a in post_image["Attributes"] if a["key"] == "customerid")
    assert customer["__type"].startswith("EntityReference:") and customer["LogicalName"] == "account"

    # A change outside the filtering attributes is not pushed.
    assert dv.patch(f"salesorders({order_id})", {"description": "quiet"}).status_code == 204
    time.sleep(0.5)
    assert len(hook.calls) == 1


def test_webhook_retries_once_on_503(dv: Dv, hook: _Hook) -> None:
    _register(dv, hook.url, "Create", "account")
    hook.statuses = [503, 503]
    dv.create("accounts", {"name": "Pushed"})
    calls = hook.wait_for(2)
    assert [c["status"] for c in calls] == [503, 503]
    time.sleep(0.3)
    assert len(hook.calls) == 2  # one retry only
    log = dv.door.call("GET", "pushes")["value"]
    assert [entry["attempt"] for entry in log if entry["entity"] == "account"][-2:] == [1, 2]
    assert calls[0]["body"]["OutputParameters"][0]["key"] == "id"


def test_queue_steps_send_the_json_context_to_service_bus(dv: Dv, servicebus_emulator: Any) -> None:
    from azure.servicebus import ServiceBusClient

    queue = f"dataverse-push-{uuid.uuid4().hex[:8]}"
    servicebus_emulator.create_queue(queue)
    connection = servicebus_emulator.connection_string
    endpoint = dv.create(
        "serviceendpoints",
        {"name": "connector queue", "contract": 2, "authtype": 7, "authvalue": connection, "path": queue,
         "messageformat": 2, "userclaim": 1},
    )  # fmt: skip
    dv.create(
        "sdkmessageprocessingsteps",
        {
            "name": "connector: Create of account", "stage": 40, "mode": 1,
            "sdkmessageid@odata.bind": f"/sdkmessages({sid('sdkmessage', 'Create')})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({sid('sdkmessagefilter', 'Create:account')})",
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint['serviceendpointid']})",
        },
    )  # fmt: skip
    account = dv.create("accounts", {"name": "Pushed to the queue"})
    with ServiceBusClient.from_connection_string(connection) as client, client.get_queue_receiver(queue) as receiver:
        messages = receiver.receive_messages(max_message_count=1, max_wait_time=10)
        assert len(messages) == 1
        message = messages[0]
        receiver.complete_message(message)
    assert message.content_type == "application/json"
    claims = "http://schemas.microsoft.com/xrm/2011/Claims"
    properties = {
        k.decode() if isinstance(k, bytes) else k: v for k, v in (message.application_properties or {}).items()
    }
    assert properties[f"{claims}/EntityLogicalName"] in ("account", b"account")
    assert properties[f"{claims}/RequestName"] in ("Create", b"Create")
    context = json.loads(b"".join(message.body))
    assert context["MessageName"] == "Create" and context["PrimaryEntityId"] == account["accountid"]


def test_a_rolled_back_write_is_never_pushed(dv: Dv, hook: _Hook) -> None:
    _register(dv, hook.url, "Create", "account")
    failed = dv.post("accounts", {"name": "Half", "contact_customer_accounts": [{"lastname": "z" * 51}]})
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "0x80044331"
    assert dv.get("accounts?$select=name&$filter=name eq 'Half'").json()["value"] == []
    dv.create("accounts", {"name": "Whole"})
    calls = hook.wait_for(1)
    time.sleep(0.3)
    assert [c["body"]["InputParameters"][0]["value"]["Attributes"] for c in hook.calls] == [
        calls[0]["body"]["InputParameters"][0]["value"]["Attributes"]
    ]
    names = [a["value"] for a in calls[0]["body"]["InputParameters"][0]["value"]["Attributes"] if a["key"] == "name"]
    assert names == ["Whole"]
