"""Sales orders and quotes into BC end to end, on a fresh local stack of this module's own.

The demo data is fully synchronized first (customers, items, units and currencies coupled). Then:
a submitted order becomes exactly one BC order with the right header, lines and comment lines;
each failed precondition is stored once and the order goes through once fixed (by the poll);
push brings a submitted order over within seconds; redelivered and concurrent duplicate messages,
429/5xx and a create whose answer is lost after BC committed it all end with one BC order and one
coupling; quotes are created, revised (the previous BC version archived) and won once.

Orders and quotes are written in Sales by a "seller" (another application user), as a person
would: the connector skips its own writes (the echo rule).
"""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import requests
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from emulators._http.client import BackDoor, https_session
from emulators.stack import LocalStack, start_local_stack
from shared.adapters.tables import TableCouplingStore, open_table_state
from shared.adapters.tables.conversion_ledger import TableConversionLedger
from shared.config import TableStorageSettings
from shared.domain.conversion_ledger import ConversionState
from shared.domain.sales_documents import MAPPING_SALES_ORDER, MAPPING_SALES_QUOTE, DocumentKind, creation_marker
from shared.resources import QUEUE_SALES_ORDERS, TABLE_CONVERSION_LEDGER, TABLE_COUPLINGS

pytestmark = pytest.mark.stack

NEVER = "0 0 0 1 1 *"  # the tests run the polls themselves
WRITE_IN_ITEM = "WRITE-IN"
FREIGHT_ACCOUNT = "6100"
DEADLINE = 30.0


@dataclass
class Env:
    """The module's stack and handles on every side of it."""

    stack: LocalStack
    base: str
    key: dict[str, str]
    bc_door: BackDoor
    dataverse_door: BackDoor
    seller_token: str
    couplings: TableCouplingStore
    ledger: TableConversionLedger
    ids: dict[str, str]

    # -- the connector --
    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.post(f"{self.base}/{path}", headers=self.key, json=body or {}, timeout=120)

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.base}/{path}", headers=self.key, params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def run_timer(self, name: str) -> None:
        root = self.base.removesuffix("/api")
        run = requests.post(f"{root}/admin/functions/{name}", headers=self.key, json={}, timeout=120)
        assert run.status_code == 202 and run.json()["status"] == "Succeeded", run.text

    def errors_about(self, dataverse_id: str) -> list[dict[str, Any]]:
        return [e for e in self.get("errors", limit="1000")["value"] if dataverse_id in e["source"]]

    # -- Sales, as the seller --
    def sales(self, method: str, path: str, body: Any = None) -> requests.Response:
        start = self.stack.dataverse.start_line
        session = https_session(str(start["ca_bundle"]))
        headers = {"Authorization": f"Bearer {self.seller_token}", "If-Match": "*"} if method == "PATCH" else {}
        headers.setdefault("Authorization", f"Bearer {self.seller_token}")
        response = session.request(method, f"{start['base_url']}/{path}", json=body, headers=headers, timeout=60)
        assert response.status_code < 300, response.text
        return response

    def create_in_sales(self, entity_set: str, body: dict[str, Any]) -> str:
        created = self.sales("POST", entity_set, body)
        return created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    def sales_row(self, entity: str, row_id: str) -> dict[str, Any]:
        rows = self.dataverse_door.call("GET", f"rows?entity={entity}")["value"]
        return next(r for r in rows if r[f"{entity}id"] == row_id)

    # -- BC --
    def bc(self, method: str, path: str, **kwargs: Any) -> Any:
        start = self.stack.business_central.start_line
        token = self.bc_door.mint_token()
        session = https_session(str(start["ca_bundle"]))
        url = f"{start['base_url']}/companies({start['company_id']})/{path}"
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = session.request(method, url, headers=headers, timeout=60, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def bc_documents(self, entity_set: str, external_number: str) -> list[dict[str, Any]]:
        query = {"$filter": f"externalDocumentNumber eq '{external_number}'"}
        return list(self.bc("GET", entity_set, params=query)["value"])

    def bc_lines(self, entity_set: str, bc_id: str, lines: str) -> list[dict[str, Any]]:
        found = self.bc("GET", f"{entity_set}({bc_id})/{lines}")["value"]
        return sorted(found, key=lambda line: line["sequence"])


def _wait(check: Callable[[], Any], env: Env, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    log = "\n".join(env.stack.host.output_tail[-60:])
    pytest.fail(f"not reached in {timeout} s; errors: {env.get('errors')['value'][:5]}\n{log}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    stack = start_local_stack(
        workdir=tmp_path_factory.mktemp("orders-stack"),
        seed="demo",
        settings_overrides={
            "SCHEDULE_MAPPING_SYNC": NEVER,
            "SCHEDULE_WEBHOOK_RENEWAL": NEVER,
            "SCHEDULE_SALES_ORDER_POLL": NEVER,
            "SCHEDULE_SALES_QUOTE_POLL": NEVER,
            "SCHEDULE_ORDER_FOLLOWUP": NEVER,
            "SCHEDULE_POSTED_INVOICES": NEVER,
            "AUTO_CREATE_SALES_ORDERS": "true",
            "AUTO_PROCESS_SALES_QUOTES": "true",
            "WRITE_IN_PRODUCT_NO": WRITE_IN_ITEM,
            "FREIGHT_GL_ACCOUNT_NO": FREIGHT_ACCOUNT,
        },
    )
    try:
        base = str(stack.host.start_line["base_url"])
        key = {"x-functions-key": str(stack.host.start_line["function_key"])}
        run_id = requests.post(f"{base}/fullsync", headers=key, timeout=60).json()["runId"]
        deadline = time.monotonic() + 120
        while requests.get(f"{base}/fullsync/{run_id}", headers=key, timeout=60).json()["status"] != "Finished":
            assert time.monotonic() < deadline, "the full sync did not finish"
            time.sleep(0.5)
        dataverse_door = BackDoor(stack.dataverse.start_line)
        seller_app = str(uuid.uuid4())
        dataverse_door.seed(
            {"rows": {"systemuser": [{"firstname": "Sam", "lastname": "Seller", "applicationid": seller_app}]}}
        )
        token = dataverse_door.call(
            "POST", "token", {"client_id": seller_app, "audience": stack.dataverse.start_line["org_url"]}
        )["access_token"]
        state = open_table_state(TableStorageSettings(connection_string=stack.azurite.connection_string))
        env = Env(
            stack=stack,
            base=base,
            key=key,
            bc_door=BackDoor(stack.business_central.start_line),
            dataverse_door=dataverse_door,
            seller_token=token,
            couplings=TableCouplingStore(state.table(TABLE_COUPLINGS)),
            ledger=TableConversionLedger(state.table(TABLE_CONVERSION_LEDGER)),
            ids={},
        )
        for entity, key_field, name_field in (
            ("account", "accountid", "accountnumber"),
            ("product", "productid", "productnumber"),
            ("uom", "uomid", "name"),
            ("pricelevel", "pricelevelid", "name"),
            ("transactioncurrency", "transactioncurrencyid", "isocurrencycode"),
            ("salesorder", "salesorderid", "name"),
        ):
            for row in dataverse_door.call("GET", f"rows?entity={entity}")["value"]:
                env.ids[f"{entity}:{row.get(name_field)}"] = row[key_field]
        yield env
    finally:
        stack.stop()


def _order_body(
    env: Env, name: str, lines: list[dict[str, Any]], account: str = "10000", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "customerid_account@odata.bind": f"/accounts({env.ids[f'account:{account}']})",
        "pricelevelid@odata.bind": f"/pricelevels({env.ids['pricelevel:Standard EUR']})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({env.ids['transactioncurrency:EUR']})",
        "order_details": lines,
        **extra,
    }


def _product_line(env: Env, number: str, quantity: float, **extra: Any) -> dict[str, Any]:
    return {
        "productid@odata.bind": f"/products({env.ids[f'product:{number}']})",
        "uomid@odata.bind": f"/uoms({env.ids['uom:PCS']})",
        "quantity": quantity,
        **extra,
    }


def _new_order(env: Env, lines: list[dict[str, Any]] | None = None, **extra: Any) -> tuple[str, str]:
    name = f"Order {uuid.uuid4().hex[:10]}"
    body = _order_body(env, name, lines or [_product_line(env, "1000", 2)], **extra)
    return env.create_in_sales("salesorders", body), name


def _submit(env: Env, order_id: str) -> None:
    env.sales("PATCH", f"salesorders({order_id})", {"statecode": 1, "statuscode": 3})


def _coupled(env: Env, mapping: str, dataverse_id: str) -> str | None:
    coupling = env.couplings.get_by_dataverse_id(mapping, dataverse_id)
    return coupling.bc_id if coupling else None


def _assert_exactly_one_order(env: Env, order_id: str, name: str) -> dict[str, Any]:
    bc_id = _wait(lambda: _coupled(env, MAPPING_SALES_ORDER, order_id), env)
    _wait(lambda: env.sales_row("salesorder", order_id).get("lastbackofficesubmit"), env)
    orders = env.bc_documents("salesOrders", name)
    assert [o["id"] for o in orders] == [bc_id]
    assert env.bc_documents("salesOrders", creation_marker(DocumentKind.ORDER, order_id)) == []
    couplings = [c for c in env.couplings.list_couplings(MAPPING_SALES_ORDER) if c.dataverse_id == order_id]
    assert [c.bc_id for c in couplings] == [bc_id]
    entry = env.ledger.get("order", order_id)
    assert entry is not None and entry.state is ConversionState.CONVERTED and entry.bc_id == bc_id
    row = env.sales_row("salesorder", order_id)
    assert row["statecode"] == 1 and row["statuscode"] == 3
    return dict(orders[0])


# -- the demo order: a precondition, its fix, the poll, and every header and line rule -------------
def test_the_demo_order_waits_for_its_write_in_item_then_the_poll_converts_it_with_every_rule(env: Env) -> None:
    order_id = env.ids["salesorder:Bikes for the Adatum fleet"]
    first = env.post(f"salesorders/{order_id}/create-in-bc")
    assert first.status_code == 400, first.text
    assert first.json()["error"]["code"] == "WriteInItemNotFound"
    env.run_timer("timer_poll_sales_orders")  # the poll retries it: the same cause, no second error row
    second = env.post(f"salesorders/{order_id}/create-in-bc")
    assert second.status_code == 400
    errors = env.errors_about(order_id)
    assert len(errors) == 1, errors
    assert "WRITE_IN_PRODUCT_NO names item WRITE-IN" in errors[0]["message"]
    assert env.bc_documents("salesOrders", "Bikes for the Adatum fleet") == []

    env.bc("POST", "items", json={"number": WRITE_IN_ITEM, "displayName": "Write-in product", "type": "Non-Inventory"})
    env.run_timer("timer_poll_sales_orders")
    order = _assert_exactly_one_order(env, order_id, "Bikes for the Adatum fleet")
    customer = env.bc("GET", "customers", params={"$filter": "number eq 'C00010'"})["value"][0]
    assert order["customerId"] == customer["id"]
    assert order["requestedDeliveryDate"] == "2026-12-15"
    assert order["currencyCode"] == "EUR"  # the Sales base currency is BC's local currency
    lines = [
        (line["lineType"], line["lineObjectNumber"], line["quantity"], line["unitPrice"], line["discountAmount"])
        for line in env.bc_lines("salesOrders", order["id"], "salesOrderLines")
    ]
    assert lines == [
        ("Item", "1000", 4, 450, 100),
        ("Item", "1001", 4, 39.95, 0),
        ("Item", WRITE_IN_ITEM, 1, 12.5, 0),
        ("Account", FREIGHT_ACCOUNT, 1, 25, 0),
    ]
    assert env.sales_row("salesorder", order_id)["lastbackofficesubmit"].startswith(time.strftime("%Y-%m-%d"))
    again = env.post(f"salesorders/{order_id}/create-in-bc")
    assert again.status_code == 200 and again.json()["bcId"] == order["id"]


# -- push --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def push(env: Env) -> Env:
    setup = env.post("setup/push")
    assert setup.status_code in (200, 207), setup.text
    steps = {item["name"]: item["action"] for item in setup.json()["items"] if item["kind"] == "step"}
    assert steps.get("BC connector: Update of salesorder to sales-orders") == "created", setup.text
    assert steps.get("BC connector: Update of quote to quotes") == "created", setup.text
    return env


def test_a_submitted_order_is_pushed_to_bc_with_long_texts_on_comment_lines(push: Env) -> None:
    text = "Assembly and delivery: " + "bring the bicycles to the loading bay at the back of the building. " * 3
    order_id, name = _new_order(push, [_product_line(push, "1001", 3, description=text.strip())])
    started = time.monotonic()
    _submit(push, order_id)
    order = _assert_exactly_one_order(push, order_id, name)
    print(f"submitted → BC order: {time.monotonic() - started:.1f} s")
    lines = push.bc_lines("salesOrders", order["id"], "salesOrderLines")
    assert [line["lineType"] for line in lines] == ["Item", "Comment", "Comment"]
    assert all(len(line["description"]) <= 100 for line in lines)
    assert "".join(line["description"] for line in lines) == text.strip()


# -- exactly once ------------------------------------------------------------------------------------
def test_redelivered_and_concurrent_duplicates_make_one_bc_order(push: Env) -> None:
    order_id, name = _new_order(push)
    push.bc_door.delay(1.0, method="POST", path=r"\$batch", count=1)  # keep the first worker busy a while
    _submit(push, order_id)  # the push message
    body = json.dumps({"dataverseId": order_id, "source": "poll"})
    connection = push.stack.settings["ServiceBusConnection"]
    with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_sender(QUEUE_SALES_ORDERS) as sender,
    ):
        sender.send_messages([ServiceBusMessage(body) for _ in range(3)])  # the same request, again and again
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: push.post(f"salesorders/{order_id}/create-in-bc"), range(3)))
    assert {a.status_code for a in answers} <= {200, 201, 503}, [a.text for a in answers]
    _assert_exactly_one_order(push, order_id, name)
    time.sleep(2)  # every duplicate has had its turn
    assert len(push.bc_documents("salesOrders", name)) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "fail", "status": 503, "count": 2}, id="5xx-before-commit"),
        pytest.param({"kind": "throttle", "status": 429, "count": 3, "retry_after": 0.5}, id="429"),
        pytest.param({"kind": "drop", "count": 1}, id="header-answer-lost-after-commit"),
        pytest.param({"kind": "drop", "count": 2}, id="header-and-lines-answers-lost-after-commit"),
    ],
)
def test_faults_mid_way_still_make_exactly_one_bc_order(push: Env, fault: dict[str, Any]) -> None:
    order_id, name = _new_order(push, [_product_line(push, "1000", 1), _product_line(push, "1001", 2)])
    push.bc_door.call("POST", "faults", {"method": "POST", "path": r"\$batch", **fault})
    try:
        _submit(push, order_id)
        order = _assert_exactly_one_order(push, order_id, name)
        assert push.bc_door.faults()["faults"] == [], "every armed shot was taken by the conversion"
    finally:
        push.bc_door.clear_faults()
    lines = push.bc_lines("salesOrders", order["id"], "salesOrderLines")
    assert [(line["lineObjectNumber"], line["quantity"]) for line in lines] == [("1000", 1), ("1001", 2)]


# -- preconditions -----------------------------------------------------------------------------------
def test_each_precondition_is_stored_once_and_the_order_goes_through_once_fixed(push: Env) -> None:
    stranger = push.create_in_sales("accounts", {"name": f"Stranger {uuid.uuid4().hex[:6]}", "customertypecode": 3})
    loner = push.create_in_sales("contacts", {"firstname": "Lone", "lastname": f"Buyer {uuid.uuid4().hex[:4]}"})
    install = push.ids["product:R-INSTALL"]
    hour = push.sales_row("uom", push.ids["uom:HOUR"]) if "uom:HOUR" in push.ids else None
    cases: dict[str, tuple[str, str]] = {}
    order_id, _ = _new_order(push, account="10000")
    push.sales("PATCH", f"salesorders({order_id})", {"customerid_account@odata.bind": f"/accounts({stranger})"})
    cases["CustomerNotCoupled"] = (order_id, "no customer coupled to the Dynamics 365 Sales account")
    contact_order = push.create_in_sales(
        "salesorders",
        {
            "name": "Contact order",
            "customerid_contact@odata.bind": f"/contacts({loner})",
            "pricelevelid@odata.bind": f"/pricelevels({push.ids['pricelevel:Standard EUR']})",
            "order_details": [_product_line(push, "1000", 1)],
        },
    )
    cases["ContactWithoutAccount"] = (contact_order, "doesn't correspond to an account")
    assert hour is not None
    services_order, _ = _new_order(
        push,
        [
            {
                "productid@odata.bind": f"/products({install})",
                "uomid@odata.bind": f"/uoms({hour['uomid']})",
                "quantity": 2,
            }
        ],
    )
    cases["ResourceProductUnavailable"] = (services_order, "BC API v2.0 has no resources")
    long_city, _ = _new_order(push, shipto_city="Sint-Martens-Latem aan de Leie, Oost-Vlaanderen")
    cases["TextTooLong"] = (long_city, "shipToCity takes at most 30")
    # Couplings the sync made, removed for this test: a product's and a currency's.
    for mapping, dataverse_id in (
        ("ITEM-PRODUCT", push.ids["product:1002"]),
        ("CURRENCY", push.ids["transactioncurrency:USD"]),
    ):
        bc_id = push.get(f"couplings/{mapping}", dataverseId=dataverse_id)["bcId"]
        assert requests.delete(f"{push.base}/couplings/{mapping}/{bc_id}", headers=push.key, timeout=60).ok
    uncoupled_product, _ = _new_order(push, [_product_line(push, "1002", 1, ispriceoverridden=True, priceperunit=5)])
    cases["ProductNotCoupled"] = (uncoupled_product, "product 'Bicycle lock, extra-long cable' on line 1")
    cases["CurrencyNotCoupled"] = (
        push.create_in_sales(
            "salesorders",
            _order_body(push, "Dollars", [_product_line(push, "1001", 1, ispriceoverridden=True, priceperunit=5)])
            | {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({push.ids['transactioncurrency:USD']})"},
        ),
        "is not coupled to a Business Central currency",
    )
    boxes = _product_line(push, "1001", 1, ispriceoverridden=True, priceperunit=5)
    boxes["uomid@odata.bind"] = f"/uoms({push.ids['uom:Box of 12']})"
    box_order, _ = _new_order(push, [boxes])
    cases["UnitNotCoupled"] = (box_order, "'Box of 12' on line 1 of sales order")
    for order_id, _ in cases.values():
        _submit(push, order_id)
    not_submitted, _ = _new_order(push)
    answer = push.post(f"salesorders/{not_submitted}/create-in-bc")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "OrderNotSubmitted", answer.text
    cases["OrderNotSubmitted"] = (not_submitted, "it is not submitted")
    for code, (order_id, words) in cases.items():
        stored = _wait(partial(push.errors_about, order_id), push)
        assert len(stored) == 1 and words in stored[0]["message"], (code, stored)
        assert _coupled(push, MAPPING_SALES_ORDER, order_id) is None
    push.run_timer("timer_poll_sales_orders")  # every one is retried: the same causes, no new rows
    push.run_timer("timer_poll_sales_orders")
    time.sleep(2)
    for code, (order_id, _) in cases.items():
        assert len(push.errors_about(order_id)) == 1, code

    # Fix one: the account gets its BC customer; the poll converts the order.
    created = push.post("records/CUSTOMER/create-in-bc", {"dataverseId": stranger})
    assert created.status_code == 201, created.text
    order_id = cases["CustomerNotCoupled"][0]
    push.run_timer("timer_poll_sales_orders")
    order = _assert_exactly_one_order(push, order_id, push.sales_row("salesorder", order_id)["name"])
    assert order["customerId"] == created.json()["coupling"]["bcId"]


# -- quotes ------------------------------------------------------------------------------------------
def _quote_body(env: Env, name: str, quantity: int) -> dict[str, Any]:
    return {
        "name": name,
        "customerid_account@odata.bind": f"/accounts({env.ids['account:20000']})",
        "pricelevelid@odata.bind": f"/pricelevels({env.ids['pricelevel:Standard EUR']})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({env.ids['transactioncurrency:EUR']})",
        "effectiveto": "2027-03-31T00:00:00Z",
        "quote_details": [_product_line(env, "1000", quantity)],
    }


def test_a_quote_its_revision_with_archive_and_the_won_quote(push: Env) -> None:
    name = f"Quote {uuid.uuid4().hex[:8]}"
    quote_id = push.create_in_sales("quotes", _quote_body(push, name, 2))
    push.sales("PATCH", f"quotes({quote_id})", {"statecode": 1, "statuscode": 2})
    bc_id = _wait(lambda: _coupled(push, MAPPING_SALES_QUOTE, quote_id), push)
    (quote,) = push.bc_documents("salesQuotes", name)
    assert quote["id"] == bc_id and quote["validUntilDate"] == "2027-03-31"
    assert [line["quantity"] for line in push.bc_lines("salesQuotes", bc_id, "salesQuoteLines")] == [2]

    # A revision: the BC quote keeps its number; its previous content is archived first.
    revised = push.sales("POST", "ReviseQuote", {"QuoteId": quote_id, "ColumnSet": {"AllColumns": True}}).json()
    revision_id = revised["quoteid"]
    line = next(r for r in push.dataverse_door.call("GET", "rows?entity=quotedetail")["value"]
                if r["quoteid"]["id"] == revision_id)  # fmt: skip
    push.sales("PATCH", f"quotedetails({line['quotedetailid']})", {"quantity": 5})
    push.sales("PATCH", f"quotes({revision_id})", {"statecode": 1, "statuscode": 2})
    _wait(lambda: _coupled(push, MAPPING_SALES_QUOTE, revision_id) == bc_id, push)
    assert _coupled(push, MAPPING_SALES_QUOTE, quote_id) is None
    (same,) = push.bc_documents("salesQuotes", name)
    assert same["number"] == quote["number"]
    assert [line["quantity"] for line in push.bc_lines("salesQuotes", bc_id, "salesQuoteLines")] == [5]
    archive = push.get(f"quotes/{revision_id}/archive")
    assert [(v["version"], v["reason"]) for v in archive["versions"]] == [(0, "revised")]
    assert [line["quantity"] for line in archive["versions"][0]["lines"]] == [2]

    # Won, with no order yet: an error to fix; then the order from the quote is converted once.
    push.sales(
        "POST",
        "WinQuote",
        {"QuoteClose": {"subject": "Won", "quoteid@odata.bind": f"/quotes({revision_id})"}, "Status": -1},
    )
    push.run_timer("timer_poll_sales_quotes")  # winning is a close action, not an Update: the poll finds it
    (error,) = _wait(lambda: push.errors_about(revision_id), push)
    assert "Unable to find Dynamics 365 Sales order that corresponds to the won quote" in error["message"]
    order_id = push.create_in_sales(
        "salesorders",
        _order_body(push, f"From {name}", [_product_line(push, "1000", 5)], account="20000")
        | {"quoteid@odata.bind": f"/quotes({revision_id})"},
    )
    _submit(push, order_id)
    _assert_exactly_one_order(push, order_id, f"From {name}")
    push.run_timer("timer_poll_sales_quotes")
    _wait(lambda: (e := push.ledger.get("quote-won", revision_id)) and e.state is ConversionState.CONVERTED, push)
    archive = push.get(f"quotes/{revision_id}/archive")
    assert [(v["version"], v["reason"]) for v in archive["versions"]] == [(0, "revised"), (1, "won")]
    push.run_timer("timer_poll_sales_quotes")  # handled once: nothing more happens
    assert len(push.get(f"quotes/{revision_id}/archive")["versions"]) == 2
    assert len(push.bc_documents("salesOrders", f"From {name}")) == 1


def test_a_malformed_message_is_stored_with_its_reason_and_not_retried(env: Env) -> None:
    connection = env.stack.settings["ServiceBusConnection"]
    marker = f"not json {uuid.uuid4().hex}"
    with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_sender(QUEUE_SALES_ORDERS) as sender,
    ):
        sender.send_messages(ServiceBusMessage(marker))

    def stored() -> list[dict[str, Any]]:
        return [e for e in env.get("errors", limit="1000")["value"] if marker in e["detail"]]

    (error,) = _wait(stored, env)
    assert error["mapping"] == f"QUEUE {QUEUE_SALES_ORDERS}"
    assert "malformed sales order message: not JSON" in error["message"]
    time.sleep(1.5)
    assert len(stored()) == 1  # completed, not redelivered


# -- order follow-up, BC → Sales (behaviour reference §4.6, §4.8) -------------------------------------
def _posts(env: Env, order_id: str) -> list[str]:
    return sorted(p["text"] for p in env.dataverse_door.call("GET", "rows?entity=post")["value"]
                  if (p.get("regardingobjectid") or {}).get("id") == order_id)  # fmt: skip


def _account_posts(env: Env, account_id: str) -> list[str]:
    rows = env.dataverse_door.call("GET", "rows?entity=post")["value"]
    return sorted(p["text"] for p in rows if (p.get("regardingobjectid") or {}).get("id") == account_id)


def _converted(env: Env, lines: list[dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    order_id, name = _new_order(env, lines)
    _submit(env, order_id)
    answer = env.post(f"salesorders/{order_id}/create-in-bc")
    assert answer.status_code in (200, 201), answer.text
    bc_id = _wait(lambda: _coupled(env, MAPPING_SALES_ORDER, order_id), env)
    return order_id, name, env.bc("GET", f"salesOrders({bc_id})")


def test_order_follow_up_posts_each_event_once_and_invoices_the_order(env: Env) -> None:
    order_id, _, order = _converted(env, [_product_line(env, "1000", 3)])
    account = env.ids["account:10000"]
    before_account = _account_posts(env, account)
    env.run_timer("timer_order_followup")
    assert _posts(env, order_id) == []  # open in BC: nothing to tell yet

    # Released in BC (no API action for it: as a user in the client), with a delivery date.
    company = env.stack.business_central.start_line["company_id"]
    fields = {"status": "Released", "requestedDeliveryDate": "2026-12-24"}
    env.bc_door.call(
        "POST", "patch", {"company": company, "entity": "salesOrders", "id": order["id"], "fields": fields}
    )
    env.run_timer("timer_order_followup")
    assert _posts(env, order_id) == ["The order status has changed to Released."]
    row = env.sales_row("salesorder", order_id)
    assert row["requestdeliveryby"].startswith("2026-12-24") and (row["statecode"], row["statuscode"]) == (1, 3)

    # One of three shipped and invoiced: a shipment and an invoice post, the shipment date fulfilled.
    (line,) = env.bc_lines("salesOrders", order["id"], "salesOrderLines")
    env.bc(
        "PATCH",
        f"salesOrders({order['id']})/salesOrderLines({line['id']})",
        json={"shipQuantity": 1},
        headers={"If-Match": "*"},
    )
    env.bc("POST", f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    env.run_timer("timer_order_followup")
    assert _posts(env, order_id) == [
        "A shipment has been created for the order.",
        "An invoice has been created for the order.",
        "The order status has changed to Released.",
    ]
    (first_invoice,) = env.bc("GET", "salesInvoices", params={"$filter": f"orderNumber eq '{order['number']}'"})[
        "value"
    ]
    number = env.sales_row("salesorder", order_id)["ordernumber"]
    invoice_post = f"Invoice '{first_invoice['number']}' for order '{number}' has been posted in Business Central."
    assert [p for p in _account_posts(env, account) if p not in before_account] == [invoice_post]
    assert env.sales_row("salesorder", order_id)["datefulfilled"]

    # The rest: BC deletes the completely posted order; Sales marks it Invoiced.
    env.bc("POST", f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    env.run_timer("timer_order_followup")
    row = env.sales_row("salesorder", order_id)
    assert (row["statecode"], row["statuscode"]) == (4, 100003)
    assert len(_posts(env, order_id)) == 5
    assert f"Order '{number}' has been posted in Business Central." in _account_posts(env, account)
    # The coupling stays until the invoices are in Sales (they are linked to the order through it).
    assert _coupled(env, MAPPING_SALES_ORDER, order_id) == order["id"].lower()
    time.sleep(2.5)
    env.run_timer("timer_posted_invoices")
    invoices = [i for i in env.dataverse_door.call("GET", "rows?entity=invoice")["value"]
                if (i.get("salesorderid") or {}).get("id") == order_id]  # fmt: skip
    assert len(invoices) == 2
    env.run_timer("timer_order_followup")
    assert _coupled(env, MAPPING_SALES_ORDER, order_id) is None
    env.run_timer("timer_order_followup")  # reruns change nothing
    assert len(_posts(env, order_id)) == 5


def test_an_order_deleted_in_bc_goes_back_to_sales_and_can_be_submitted_again(env: Env) -> None:
    order_id, name, order = _converted(env, [_product_line(env, "1001", 2)])
    env.bc("DELETE", f"salesOrders({order['id']})", headers={"If-Match": "*"})
    env.run_timer("timer_order_followup")
    row = env.sales_row("salesorder", order_id)
    assert (row["statecode"], row["statuscode"]) == (0, 2) and not row.get("lastbackofficesubmit")
    assert _coupled(env, MAPPING_SALES_ORDER, order_id) is None
    # Submitted again, it becomes a new BC order.
    _submit(env, order_id)
    answer = env.post(f"salesorders/{order_id}/create-in-bc")
    assert answer.status_code == 201, answer.text
    assert answer.json()["bcId"] != order["id"].lower()
    assert [o["id"] for o in env.bc_documents("salesOrders", name)] == [answer.json()["bcId"]]
