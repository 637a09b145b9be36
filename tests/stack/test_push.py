"""Near-real-time sync on the local stack: BC webhooks and Dataverse service-endpoint events.

The connector registers everything itself (``POST /api/setup/push``); a change on one side then
reaches the other within seconds, ahead of the one-minute timer. The BC emulator's coalescing
window (30 s, like BC) is shortened through its back door for these tests and put back after;
both emulators' data, subscriptions and registrations are restored from snapshots at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from shared.domain.notifications import webhook_mappings
from shared.mappings.registry import configured_mappings
from tests.plugins._emulators import RunningEmulator
from tests.plugins.functions_host import FunctionsHostHandle

pytestmark = pytest.mark.stack

WINDOW_SECONDS = 0.3  # the BC emulator's webhook coalescing delay during these tests
PUSH_DEADLINE_SECONDS = 20.0  # well under the timer's minute; typical latency is printed
NO_ID = "00000000-0000-0000-0000-000000000000"  # BC's blank GUID


@dataclass
class Pair:
    """A coupled BC customer and Dataverse account."""

    bc_id: str
    account_id: str


@dataclass
class PushStack:
    connector: FunctionsHostHandle
    bc: RunningEmulator
    dataverse: RunningEmulator
    settings: dict[str, str]
    setups: list[requests.Response]

    def bc_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        token = self.bc.back_door.mint_token()
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.bc.session().request(
            method, f"{self.bc.start_line['base_url']}/{path}", headers=headers, timeout=30, **kwargs
        )

    def rows(self, entity: str) -> list[dict[str, Any]]:
        return list(self.dataverse.back_door.call("GET", f"rows?entity={entity}")["value"])


def _wait_for(check: Callable[[], bool], timeout: float, push: PushStack) -> float:
    """Seconds until ``check()`` held; fails the test at ``timeout`` with what the connector did."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)

    def get(route: str) -> Any:
        return requests.get(push.connector.url(route), headers=push.connector.key_headers, timeout=30).json()

    jobs = get("jobs?mapping=CUSTOMER&limit=5")
    pytest.fail(
        f"not reached in {timeout} s; jobs: {jobs}; errors: {get('errors')}; log:\n{push.connector.log()[-6000:]}"
    )


@pytest.fixture(scope="module")
def push(
    connector: FunctionsHostHandle,
    business_central_emulator: RunningEmulator,
    dataverse_emulator: RunningEmulator,
    connector_settings_for_stack: dict[str, str],
) -> Iterator[PushStack]:
    """Push registered twice on the session's stack; everything put back afterwards."""
    bc, dataverse = business_central_emulator.back_door, dataverse_emulator.back_door
    bc_before, dataverse_before = bc.snapshot(), dataverse.snapshot()
    window = bc.call("GET", "webhooks")["window"]
    bc.call("PATCH", "webhooks", {"window": WINDOW_SECONDS})
    try:
        setups = [
            requests.post(connector.url("setup/push"), headers=connector.key_headers, timeout=120) for _ in range(2)
        ]
        yield PushStack(connector, business_central_emulator, dataverse_emulator, connector_settings_for_stack, setups)
    finally:
        bc.call("PATCH", "webhooks", {"window": window})
        bc.restore(bc_before)
        dataverse.restore(dataverse_before)


@pytest.fixture
def pair(push: PushStack) -> Iterator[Pair]:
    """Customer C00010 coupled to account 10000 for one test, uncoupled after."""
    company = push.settings["BC_COMPANY_ID"]
    found = push.bc_api("GET", f"companies({company})/customers", params={"$filter": "number eq 'C00010'"})
    customer = found.json()["value"][0]
    bc_id = customer["id"]
    # Its salesperson, payment terms and shipment method are not coupled here (other mappings'
    # business); blank them so the customer syncs on its own. The module's snapshot puts them back.
    blank = {"salespersonCode": "", "paymentTermsId": NO_ID, "shipmentMethodId": NO_ID}
    if any(customer.get(k) != v for k, v in blank.items()):
        patch = {"company": company, "entity": "customers", "id": bc_id, "fields": blank}
        push.bc.back_door.call("POST", "patch", patch)
        time.sleep(1)  # that change's own notification arrives while the pair is still uncoupled
    account_id = next(r["accountid"] for r in push.rows("account") if r.get("accountnumber") == "10000")
    couplings = push.connector.url("couplings/CUSTOMER")
    requests.delete(f"{couplings}/{bc_id}", headers=push.connector.key_headers, timeout=30)  # a leftover
    coupled = requests.post(
        couplings, json={"bcId": bc_id, "dataverseId": account_id}, headers=push.connector.key_headers, timeout=60
    )
    assert coupled.status_code == 201, coupled.text
    # A fresh coupling has no baseline: synchronize both ways once, as the two passes of a run do
    # (the first pass leaves the other side marked changed so that the second completes the merge).
    for direction in ("fromDataverse", "toDataverse"):
        synced = requests.post(
            push.connector.url(f"records/CUSTOMER/{bc_id}/sync"),
            json={"direction": direction},
            headers=push.connector.key_headers,
            timeout=60,
        )
        assert synced.status_code == 200 and synced.json()["jobs"][0]["failed"] == 0, synced.text
    try:
        yield Pair(bc_id, account_id)
    finally:
        requests.delete(f"{couplings}/{bc_id}", headers=push.connector.key_headers, timeout=30)


def _notification(push: PushStack, client_state: str) -> dict[str, Any]:
    company = push.settings["BC_COMPANY_ID"]
    return {
        "value": [
            {
                "subscriptionId": uuid.uuid4().hex,
                "clientState": client_state,
                "expirationDateTime": "2030-01-01T00:00:00Z",
                "resource": f"api/v2.0/companies({company})/customers({uuid.uuid4()})",
                "changeType": "updated",
                "lastModifiedDateTime": "2030-01-01T00:00:00Z",
            }
        ]
    }


def _record_sync_runs_during(push: PushStack, action: Callable[[], None], settle: float = 2.0) -> int:
    """How many ``record-sync`` messages the host ran while ``action`` and ``settle`` seconds after it."""
    before = list(push.connector.process.output_tail)
    action()
    time.sleep(settle)
    after = list(push.connector.process.output_tail)
    # The tail keeps the last 200 lines: the new ones are those after the last line seen before.
    start = len(after) - after[::-1].index(before[-1]) if before and before[-1] in after else 0
    return sum("Executing 'Functions.queue_record_sync'" in line for line in after[start:])


# -- the webhook route ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_handshake_echoes_the_token_as_text(connector: FunctionsHostHandle, method: str) -> None:
    token = "tok-" + uuid.uuid4().hex
    answer = requests.request(method, connector.url("webhooks/bc"), params={"validationToken": token}, timeout=30)
    assert answer.status_code == 200
    assert answer.text == token and answer.headers["Content-Type"].startswith("text/plain")


def test_a_wrong_client_state_is_401_and_enqueues_nothing(push: PushStack) -> None:
    wrong = "not-the-state-" + uuid.uuid4().hex
    answers: list[requests.Response] = []

    def post() -> None:
        answers.append(requests.post(push.connector.url("webhooks/bc"), json=_notification(push, wrong), timeout=30))

    assert _record_sync_runs_during(push, post) == 0
    assert answers[0].status_code == 401
    assert answers[0].json()["error"]["code"] == "Unauthorized" and wrong not in answers[0].text
    assert wrong not in push.connector.log()


def test_the_right_client_state_is_accepted_and_queued_at_once(push: PushStack) -> None:
    answers: list[requests.Response] = []

    def post() -> None:
        body = _notification(push, push.settings["WEBHOOK_CLIENT_STATE"])
        answers.append(requests.post(push.connector.url("webhooks/bc"), json=body, timeout=30))

    assert _record_sync_runs_during(push, post) == 1
    assert answers[0].status_code == 202, answers[0].text
    assert answers[0].json()["messages"] == 1


# -- registration -----------------------------------------------------------------------------------
def test_registering_twice_leaves_one_subscription_per_resource(push: PushStack) -> None:
    assert [s.status_code for s in push.setups] in ([200, 200], [207, 207]), push.setups[-1].text
    url = push.settings["WEBHOOK_NOTIFICATION_URL"]
    ours = [s for s in push.bc_api("GET", "subscriptions").json()["value"] if s["notificationUrl"] == url]
    resources = sorted(s["resource"].rsplit("/", 1)[1] for s in ours)
    assert resources == sorted(webhook_mappings(configured_mappings(None)))
    second = [(i["kind"], i["action"]) for i in push.setups[1].json()["items"] if i["kind"] == "bcSubscription"]
    assert second and all(action == "kept" for _, action in second)


def test_the_renewal_timer_keeps_exactly_those_subscriptions(push: PushStack) -> None:
    url = push.settings["WEBHOOK_NOTIFICATION_URL"]

    def ours() -> list[str]:
        listed = push.bc_api("GET", "subscriptions").json()["value"]
        return sorted(s["subscriptionId"] for s in listed if s["notificationUrl"] == url)

    before = ours()
    assert push.connector.run_function("timer_renew_webhooks")["status"] == "Succeeded"
    assert ours() == before


def test_registering_twice_leaves_one_endpoint_and_one_step_per_table_and_message(push: PushStack) -> None:
    endpoints = [e for e in push.rows("serviceendpoint") if e["name"].startswith("BC connector")]
    assert len(endpoints) == 1
    assert (endpoints[0]["contract"], endpoints[0]["messageformat"], endpoints[0]["path"]) == (2, 2, "dataverse-events")
    steps = [s["name"] for s in push.rows("sdkmessageprocessingstep") if s["name"].startswith("BC connector")]
    assert len(steps) == len(set(steps))
    for entity in ("account", "contact", "product", "systemuser"):
        for message in ("Create", "Update"):
            assert f"BC connector: {message} of {entity} to dataverse-events" in steps
    second = push.setups[1].json()["items"]
    assert not [i for i in second if i["action"] == "created"], second
    assert [i for i in second if i["action"] == "failed"] == []


# -- end to end -------------------------------------------------------------------------------------
def test_a_bc_change_reaches_dataverse_through_the_webhook(push: PushStack, pair: Pair) -> None:
    name = f"Webhook {uuid.uuid4().hex[:8]}"
    company = push.settings["BC_COMPANY_ID"]
    changed = push.bc.back_door.call(
        "POST", "patch", {"company": company, "entity": "customers", "id": pair.bc_id, "fields": {"displayName": name}}
    )
    assert changed["displayName"] == name

    def arrived() -> bool:
        return any(r["accountid"] == pair.account_id and r.get("name") == name for r in push.rows("account"))

    latency = _wait_for(arrived, PUSH_DEADLINE_SECONDS, push)
    print(f"BC → Dataverse through the webhook: {latency:.1f} s")
    deliveries = push.bc.back_door.call("GET", "webhooks")["log"]
    assert any(d.get("url") == push.settings["WEBHOOK_NOTIFICATION_URL"] and d.get("status") == 202 for d in deliveries)


def test_a_dataverse_change_reaches_bc_through_the_service_endpoint(push: PushStack, pair: Pair) -> None:
    # A person's change, not the connector's: another application user (the echo rule skips ours).
    app_id = str(uuid.uuid4())
    push.dataverse.back_door.seed(
        {"rows": {"systemuser": [{"firstname": "Sales", "lastname": "Integration", "applicationid": app_id}]}}
    )
    token = push.dataverse.back_door.call(
        "POST", "token", {"client_id": app_id, "audience": push.dataverse.start_line["org_url"]}
    )["access_token"]
    name = f"Pushed {uuid.uuid4().hex[:8]}"
    # modifiedon has whole seconds: an edit in the same second as the connector's own last write
    # to the row looks unchanged to the sync (a known limit of timestamp-based change detection).
    time.sleep(1.1)
    updated = push.dataverse.session().patch(
        f"{push.dataverse.start_line['base_url']}/accounts({pair.account_id})",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
        timeout=30,
    )
    assert updated.status_code == 204, updated.text
    company = push.settings["BC_COMPANY_ID"]

    def arrived() -> bool:
        customer = push.bc_api("GET", f"companies({company})/customers({pair.bc_id})").json()
        return bool(customer.get("displayName") == name)

    latency = _wait_for(arrived, PUSH_DEADLINE_SECONDS, push)
    print(f"Dataverse → BC through the service endpoint: {latency:.1f} s")

    def logged() -> bool:
        # The emulator logs a delivery after closing its Service Bus client, which can be after we ran it.
        pushes = push.dataverse.back_door.call("GET", "pushes")["value"]
        return any(p["id"] == pair.account_id and p["outcome"] == "delivered" and p["contract"] == 2 for p in pushes)

    _wait_for(logged, 10, push)
