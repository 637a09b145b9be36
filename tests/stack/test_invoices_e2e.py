"""Posted invoices, payment status and account statistics BC → Sales, end to end on a stack of this module's own.

The demo data is fully synchronized first (customers, items, currencies coupled). A BC order of a
coupled customer, coupled to a Sales order under SALESORDER-ORDER, is shipped and invoiced in the BC
emulator; the posted invoice then reaches Sales as a Billed invoice linked to that order, payments
move it to Paid/Partial and Paid/Complete, and the statistics rows equal what the BC emulator's
documents add up to. Every job run twice changes nothing the second time.

The Sales order conversion (SALESORDER-ORDER) is another feature's; here the pair is coupled
straight in the Couplings table, as that conversion leaves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from emulators.stack import LocalStack, start_local_stack
from shared.adapters.business_central import BusinessCentralAdapter, BusinessCentralApi
from shared.adapters.dataverse import DataverseAdapter
from shared.adapters.tables import TableCouplingStore, open_table_state, table_service_client
from shared.config import Settings, load_settings
from shared.domain.state import Coupling
from shared.resources import TABLE_COUPLINGS
from tests.stack._apis import business_central_api, dataverse_adapter

pytestmark = pytest.mark.stack

FAR_AWAY = "0 0 0 1 1 *"
TIMERS = ("timer_posted_invoices", "timer_payment_status", "timer_account_statistics")


class Connector:
    """The connector's HTTP surface and admin endpoint on the module's stack."""

    def __init__(self, stack: LocalStack) -> None:
        self.base = str(stack.host.start_line["base_url"])
        self.headers = {"x-functions-key": str(stack.host.start_line["function_key"])}

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.base}/{path}", headers=self.headers, params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, expect: int = 200) -> Any:
        response = requests.post(f"{self.base}/{path}", headers=self.headers, json={}, timeout=120)
        assert response.status_code == expect, response.text
        return response.json()

    def full_sync(self, timeout: float = 120) -> None:
        run_id = self.post("fullsync", expect=202)["runId"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"fullsync/{run_id}")
            if run["status"] == "Finished":
                assert all(line["status"] == "Finished" for line in run["lines"]), run
                return
            time.sleep(0.5)
        raise AssertionError(f"full sync {run_id} did not finish")

    def run_timer(self, name: str) -> dict[str, Any]:
        """Run a timer function now; answer its newest job from the job log."""
        root = self.base.removesuffix("/api")
        run = requests.post(f"{root}/admin/functions/{name}", headers=self.headers, json={}, timeout=180)
        assert run.status_code == 202 and run.json()["status"] == "Succeeded", run.text
        job_name = {
            "timer_posted_invoices": "POSTEDSALESINV-INV",
            "timer_payment_status": "INVOICE PAYMENT STATUS",
            "timer_account_statistics": "CUSTOMER STATISTICS",
        }[name]
        newest: dict[str, Any] = self.get("jobs", mapping=job_name, limit="1")["value"][0]
        return newest


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Every schedule far away: the tests run the timers themselves, so counts never depend on the clock.
    schedules = ("MAPPING_SYNC", "WEBHOOK_RENEWAL", "POSTED_INVOICES", "PAYMENT_STATUS", "ACCOUNT_STATISTICS")
    overrides = dict.fromkeys((f"SCHEDULE_{name}" for name in schedules), FAR_AWAY)
    started = start_local_stack(
        workdir=tmp_path_factory.mktemp("invoice-stack"), seed="demo", settings_overrides=overrides
    )
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def connector(stack: LocalStack) -> Connector:
    connector = Connector(stack)
    connector.full_sync()
    return connector


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    return load_settings(stack.settings)


@pytest.fixture(scope="module")
def dataverse(settings: Settings) -> DataverseAdapter:
    return dataverse_adapter(settings)


@pytest.fixture(scope="module")
def bc_api(settings: Settings) -> BusinessCentralApi:
    return business_central_api(settings)


@pytest.fixture(scope="module")
def bc(bc_api: BusinessCentralApi, settings: Settings) -> BusinessCentralAdapter:
    return BusinessCentralAdapter(bc_api, settings.business_central.company_id)


@pytest.fixture(scope="module")
def couplings(settings: Settings) -> TableCouplingStore:
    return TableCouplingStore(open_table_state(table_service_client(settings.tables)).table(TABLE_COUPLINGS))


class Bc:
    """BC actions the adapter does not make (posting, payments), over the same client."""

    def __init__(self, api: BusinessCentralApi, company_id: str) -> None:
        self.api, self.company = api, f"companies({company_id})"

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.api.send("POST", f"{self.company}/{path}", doing=f"POST {path}", json=body or {})
        return response.json() if response.content else None

    def get(self, path: str, **params: str) -> Any:
        return self.api.get_json(f"{self.company}/{path}", params=params)

    def pay(self, customer_id: str, invoice_id: str, amount: float) -> None:
        journal = self.get("customerPaymentJournals", **{"$filter": "code eq 'GENERAL'"})["value"][0]
        self.post(
            f"customerPaymentJournals({journal['id']})/customerPayments",
            {"customerId": customer_id, "amount": amount, "appliesToInvoiceId": invoice_id},
        )
        self.post(f"journals({journal['id']})/Microsoft.NAV.post")


@pytest.fixture(scope="module")
def bc_actions(bc_api: BusinessCentralApi, settings: Settings) -> Bc:
    return Bc(bc_api, settings.business_central.company_id)


def _records(bc: BusinessCentralAdapter, entity_set: str, odata_filter: str | None = None) -> list[dict[str, Any]]:
    return [r for page in bc.list_records(entity_set, filter=odata_filter) for r in page]


def _rows(dataverse: DataverseAdapter, entity_set: str, odata_filter: str | None = None) -> list[dict[str, Any]]:
    return [r for page in dataverse.list_rows(entity_set, filter=odata_filter) for r in page]


def _state(dataverse: DataverseAdapter, invoice_id: str) -> tuple[int, int]:
    row = dataverse.get_rows("invoices", [invoice_id], select=["statecode", "statuscode"])[invoice_id]
    return int(row["statecode"]), int(row["statuscode"])


@pytest.fixture(scope="module")
def order_invoice(
    connector: Connector,
    bc: BusinessCentralAdapter,
    bc_actions: Bc,
    dataverse: DataverseAdapter,
    couplings: TableCouplingStore,
) -> dict[str, Any]:
    """A Sales order of Adatum, its BC order (coupled as SALESORDER-ORDER), shipped and invoiced in BC."""
    adatum = _records(bc, "customers", "number eq 'C00010'")[0]
    account_id = couplings.get_by_bc_id("CUSTOMER", adatum["id"].lower())
    assert account_id is not None
    items = {i["number"]: i for i in _records(bc, "items")}
    price_list = _rows(dataverse, "pricelevels")[0]["pricelevelid"]
    (created,) = dataverse.create_rows(
        "salesorders",
        [
            {
                "name": "Desks for the Brussels office",
                "customerid": account_id.dataverse_id,
                "customerid@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
                "pricelevelid": price_list,
            }
        ],
    )
    assert created.ok, created.error
    sales_order_id = str(created.record_id)
    order = bc_actions.post(
        "salesOrders",
        {
            "customerId": adatum["id"],
            "externalDocumentNumber": "Desks for the Brussels office",
            "salesOrderLines": [
                {"lineType": "Item", "itemId": items["1896-S"]["id"], "quantity": 3, "discountPercent": 10},
                {"lineType": "Item", "itemId": items["SVC-INSTALL"]["id"], "quantity": 2},
                {"lineType": "Comment", "description": "Deliver to the back entrance"},
            ],
        },
    )
    couplings.couple(Coupling("SALESORDER-ORDER", order["id"].lower(), sales_order_id))
    bc_actions.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    (invoice,) = _records(bc, "salesInvoices", f"orderNumber eq '{order['number']}'")
    lines = bc_actions.get(f"salesInvoices({invoice['id']})/salesInvoiceLines")["value"]
    return {"invoice": invoice, "lines": lines, "salesorderid": sales_order_id, "account": account_id.dataverse_id}


def test_a_posted_invoice_from_a_sales_order_reaches_sales_billed_and_linked_to_its_order(
    connector: Connector, order_invoice: dict[str, Any], dataverse: DataverseAdapter, couplings: TableCouplingStore
) -> None:
    invoice = order_invoice["invoice"]
    answer = connector.post(f"invoices/{invoice['id']}/create-in-dataverse", expect=201)
    assert answer["job"]["inserted"] == 1 and answer["job"]["failed"] == 0
    invoice_id = answer["coupling"]["dataverseId"]
    row = dataverse.get_rows("invoices", [invoice_id])[invoice_id]
    assert row["invoicenumber"] == invoice["number"]
    assert (row["statecode"], row["statuscode"]) == (0, 4)  # Active / Billed
    assert row["salesorderid"] == order_invoice["salesorderid"]
    assert row["customerid"] == order_invoice["account"]
    assert row["name"] == "Desks for the Brussels office"  # the Sales order's name
    assert Decimal(str(row["totalamount"])) == Decimal(str(invoice["totalAmountIncludingTax"]))
    assert Decimal(str(row["totaltax"])) == Decimal(str(invoice["totalTaxAmount"]))
    details = sorted(
        _rows(dataverse, "invoicedetails", f"_invoiceid_value eq {invoice_id}"), key=lambda r: r["lineitemnumber"]
    )
    posted = [line for line in order_invoice["lines"] if line["lineType"] != "Comment"]
    assert [d["lineitemnumber"] for d in details] == [line["sequence"] for line in posted]
    for detail, line in zip(details, posted, strict=True):
        product = couplings.get_by_bc_id("ITEM-PRODUCT", line["itemId"].lower())
        assert product is not None and detail["productid"] == product.dataverse_id
        assert detail["quantity"] == line["quantity"]
        assert Decimal(str(detail["priceperunit"])) == Decimal(str(line["unitPrice"]))
        assert Decimal(str(detail["manualdiscountamount"])) == Decimal(str(line["discountAmount"]))
        assert Decimal(str(detail["extendedamount"])) == Decimal(str(line["amountIncludingTax"]))


def test_creating_it_again_changes_nothing_and_a_lost_coupling_is_found_again(
    connector: Connector, order_invoice: dict[str, Any], dataverse: DataverseAdapter, couplings: TableCouplingStore
) -> None:
    invoice = order_invoice["invoice"]
    again = connector.post(f"invoices/{invoice['id']}/create-in-dataverse", expect=200)
    assert (again["job"]["inserted"], again["job"]["unchanged"]) == (0, 1)
    # A run that stopped after creating the Sales invoice but before coupling it: the next run finds it.
    removed = couplings.uncouple("POSTEDSALESINV-INV", invoice["id"].lower())
    assert removed is not None
    # ... and before all its lines were written.
    first_line = _rows(dataverse, "invoicedetails", f"_invoiceid_value eq {removed.dataverse_id}")[0]
    (deleted,) = dataverse.delete_rows("invoicedetails", [first_line["invoicedetailid"]])
    assert deleted.ok, deleted.error
    recovered = connector.post(f"invoices/{invoice['id']}/create-in-dataverse", expect=201)
    assert (recovered["job"]["inserted"], recovered["job"]["coupled"]) == (0, 1)
    assert recovered["coupling"]["dataverseId"] == removed.dataverse_id
    assert len(_rows(dataverse, "invoices", f"invoicenumber eq '{invoice['number']}'")) == 1
    assert len(_rows(dataverse, "invoicedetails", f"_invoiceid_value eq {removed.dataverse_id}")) == 2


def test_the_timer_brings_the_other_posted_invoices_of_coupled_customers_once(
    connector: Connector, order_invoice: dict[str, Any], bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    posted = [i for i in _records(bc, "salesInvoices") if i["status"] in ("Open", "Paid")]
    assert len(posted) == 3  # the demo's two and the order's
    time.sleep(2.5)  # a run reads changes up to 2 s before it starts: the order's invoice is just posted
    first = connector.run_timer("timer_posted_invoices")
    assert (first["inserted"], first["unchanged"], first["failed"]) == (2, 1, 0)
    for invoice in posted:
        rows = _rows(dataverse, "invoices", f"invoicenumber eq '{invoice['number']}'")
        assert len(rows) == 1
        expected = (2, 100001) if invoice["status"] == "Paid" else (0, 4)  # the demo's paid one arrives Paid
        assert (rows[0]["statecode"], rows[0]["statuscode"]) == expected
    time.sleep(2.5)  # past the signpost: the next run's window starts after what this one read
    again = connector.run_timer("timer_posted_invoices")
    assert (again["inserted"], again["failed"]) == (0, 0)


def test_an_invoice_that_fails_is_logged_and_read_again_until_it_succeeds(
    connector: Connector,
    order_invoice: dict[str, Any],
    bc: BusinessCentralAdapter,
    bc_actions: Bc,
    dataverse: DataverseAdapter,
    couplings: TableCouplingStore,
) -> None:
    trey = _records(bc, "customers", "number eq 'C00020'")[0]
    trey_account = couplings.get_by_bc_id("CUSTOMER", trey["id"].lower())
    assert trey_account is not None
    price_list = _rows(dataverse, "pricelevels")[0]["pricelevelid"]

    def sales_order(account_id: str) -> str:
        (created,) = dataverse.create_rows(
            "salesorders",
            [
                {
                    "name": "Chairs for Trey",
                    "customerid": account_id,
                    "customerid@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
                    "pricelevelid": price_list,
                }
            ],
        )
        assert created.ok, created.error
        return str(created.record_id)

    items = {i["number"]: i for i in _records(bc, "items")}
    order = bc_actions.post(
        "salesOrders",
        {
            "customerId": trey["id"],
            "salesOrderLines": [{"lineType": "Item", "itemId": items["1900-S"]["id"], "quantity": 1}],
        },
    )
    # Coupled to a Sales order of another customer: the built-in refuses such an invoice.
    couplings.couple(Coupling("SALESORDER-ORDER", order["id"].lower(), sales_order(order_invoice["account"])))
    bc_actions.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    (invoice,) = _records(bc, "salesInvoices", f"orderNumber eq '{order['number']}'")
    for _ in range(2):  # the failure holds the watermark: the next run reads the invoice again
        time.sleep(2.5)
        failing = connector.run_timer("timer_posted_invoices")
        assert (failing["inserted"], failing["failed"]) == (0, 1)
    errors = connector.get("errors", mapping="POSTEDSALESINV-INV")["value"]
    assert errors[0]["source"] == f"bc:salesInvoices({invoice['id']})"
    assert "was changed or is no longer coupled" in errors[0]["message"]
    couplings.uncouple("SALESORDER-ORDER", order["id"].lower())
    couplings.couple(Coupling("SALESORDER-ORDER", order["id"].lower(), sales_order(trey_account.dataverse_id)))
    fixed = connector.run_timer("timer_posted_invoices")
    assert (fixed["inserted"], fixed["failed"]) == (1, 0)
    assert len(_rows(dataverse, "invoices", f"invoicenumber eq '{invoice['number']}'")) == 1


def test_payments_make_the_invoice_paid_partial_then_paid_complete(
    connector: Connector,
    order_invoice: dict[str, Any],
    bc_actions: Bc,
    dataverse: DataverseAdapter,
    couplings: TableCouplingStore,
) -> None:
    invoice = order_invoice["invoice"]
    coupling = couplings.get_by_bc_id("POSTEDSALESINV-INV", invoice["id"].lower())
    assert coupling is not None
    invoice_id = coupling.dataverse_id
    assert _state(dataverse, invoice_id) == (0, 4)
    bc_actions.pay(invoice["customerId"], invoice["id"], 100)
    time.sleep(2.5)
    partial = connector.run_timer("timer_payment_status")
    assert (partial["modified"], partial["failed"]) == (1, 0)
    assert _state(dataverse, invoice_id) == (2, 100002)  # Paid / Partial
    time.sleep(2.5)
    assert connector.run_timer("timer_payment_status")["modified"] == 0
    rest = float(Decimal(str(invoice["totalAmountIncludingTax"])) - 100)
    bc_actions.pay(invoice["customerId"], invoice["id"], rest)
    time.sleep(2.5)
    complete = connector.run_timer("timer_payment_status")
    assert (complete["modified"], complete["failed"]) == (1, 0)
    assert _state(dataverse, invoice_id) == (2, 100001)  # Paid / Complete (re-activated, then set)
    time.sleep(2.5)
    assert connector.run_timer("timer_payment_status")["modified"] == 0


def _expected_statistics(bc: BusinessCentralAdapter, bc_actions: Bc, customer: dict[str, Any]) -> dict[str, Decimal]:
    """What the BC emulator's documents add up to for one customer, summed here independently."""
    today = datetime.now(UTC).date().isoformat()
    invoices = _records(bc, "salesInvoices", f"customerId eq {customer['id']}")
    posted = [i for i in invoices if i["status"] in ("Open", "Paid")]
    balance = sum((Decimal(str(i["remainingAmount"])) for i in posted), Decimal(0))
    overdue = sum((Decimal(str(i["remainingAmount"])) for i in posted if i["dueDate"] < today), Decimal(0))
    sales = sum((Decimal(str(i["totalAmountExcludingTax"])) for i in posted), Decimal(0))
    drafts = sum((Decimal(str(i["totalAmountIncludingTax"])) for i in invoices if i["status"] == "Draft"), Decimal(0))
    outstanding = shipped = Decimal(0)
    for order in _records(bc, "salesOrders", f"customerId eq {customer['id']}"):
        for line in bc_actions.get(f"salesOrders({order['id']})/salesOrderLines")["value"]:
            if not line["quantity"]:
                continue
            amount, quantity = Decimal(str(line["netAmountIncludingTax"])), Decimal(str(line["quantity"]))
            ship, billed = Decimal(str(line["shippedQuantity"])), Decimal(str(line["invoicedQuantity"]))
            outstanding += (amount * (quantity - ship) / quantity).quantize(Decimal("0.01"))
            shipped += (amount * (ship - billed) / quantity).quantize(Decimal("0.01"))
    return {
        "nav_balancelcy": balance,
        "nav_overdueamountslcy": overdue,
        "nav_totalsaleslcy": sales,
        "nav_outstandingorderslcy": outstanding,
        "nav_shippednotinvoicedlcy": shipped,
        "nav_outstandinginvoiceslcy": drafts,
        "nav_totallcy": balance + outstanding + shipped + drafts,
        "nav_creditlimitlcy": Decimal(str(customer["creditLimit"])),
    }


def _statistics_of(dataverse: DataverseAdapter, account_id: str) -> dict[str, Any]:
    account = dataverse.get_rows("accounts", [account_id], select=["nav_accountstatisticsid"])[account_id]
    link = account["nav_accountstatisticsid"]
    assert link, f"account {account_id} has no statistics row"
    return dataverse.get_rows("nav_accountstatisticses", [link])[link]


def test_statistics_in_sales_equal_the_figures_of_the_bc_emulator(
    connector: Connector,
    order_invoice: dict[str, Any],
    bc: BusinessCentralAdapter,
    bc_actions: Bc,
    dataverse: DataverseAdapter,
    couplings: TableCouplingStore,
) -> None:
    customers = _records(bc, "customers")
    coupled = couplings.get_many_by_bc_ids("CUSTOMER", [c["id"].lower() for c in customers])
    first = connector.run_timer("timer_account_statistics")
    assert (first["inserted"], first["failed"]) == (len(coupled), 0)
    base_currency = dataverse.base_currency_id()
    for customer in customers:
        coupling = coupled.get(customer["id"].lower())
        if coupling is None:
            continue
        row = _statistics_of(dataverse, coupling.dataverse_id)
        assert row["nav_name"] == customer["displayName"] and row["nav_customerno"] == customer["number"]
        assert row["transactioncurrencyid"] == base_currency
        for name, value in _expected_statistics(bc, bc_actions, customer).items():
            assert Decimal(str(row[name])).quantize(Decimal("0.01")) == value, (customer["number"], name)
        financial = bc_actions.get(f"customers({customer['id']})/customerFinancialDetail")
        assert Decimal(str(row["nav_balancelcy"])) == Decimal(str(financial["balance"]))
    time.sleep(2.5)
    again = connector.run_timer("timer_account_statistics")
    # Nothing written; at most the customers whose documents changed within the window's overlap are re-read.
    assert (again["inserted"], again["modified"], again["failed"]) == (0, 0, 0)
    assert again["unchanged"] < len(coupled)


def test_activity_recomputes_only_the_customer_it_touched(
    connector: Connector, order_invoice: dict[str, Any], bc: BusinessCentralAdapter, bc_actions: Bc,
    dataverse: DataverseAdapter, couplings: TableCouplingStore,
) -> None:  # fmt: skip
    trey = _records(bc, "customers", "number eq 'C00020'")[0]
    items = {i["number"]: i for i in _records(bc, "items")}
    bc_actions.post(
        "salesOrders",
        {
            "customerId": trey["id"],
            "salesOrderLines": [{"lineType": "Item", "itemId": items["1900-S"]["id"], "quantity": 5}],
        },
    )
    time.sleep(2.5)
    run = connector.run_timer("timer_account_statistics")
    assert (run["inserted"], run["modified"], run["failed"]) == (0, 1, 0)
    assert run["unchanged"] <= 1  # a customer changed within the window's overlap may be re-read
    account = couplings.get_by_bc_id("CUSTOMER", trey["id"].lower())
    assert account is not None
    row = _statistics_of(dataverse, account.dataverse_id)
    expected = _expected_statistics(bc, bc_actions, trey)
    assert Decimal(str(row["nav_outstandingorderslcy"])) == expected["nav_outstandingorderslcy"] > 0
    # Update Account Statistics by hand: the figures are current, the invoices' states too.
    answer = connector.post(f"customers/{trey['id']}/update-statistics")
    assert answer["message"] == "The customer statistics have been successfully updated in Dynamics 365 Sales."
    statistics, payments = answer["jobs"]
    assert (statistics["unchanged"], statistics["modified"], payments["modified"]) == (1, 0, 0)


def test_a_canceled_invoice_is_canceled_in_sales_by_update_account_statistics(
    connector: Connector, bc: BusinessCentralAdapter, bc_actions: Bc, dataverse: DataverseAdapter
) -> None:
    adatum = _records(bc, "customers", "number eq 'C00010'")[0]
    items = {i["number"]: i for i in _records(bc, "items")}
    draft = bc_actions.post(
        "salesInvoices",
        {
            "customerId": adatum["id"],
            "salesInvoiceLines": [{"lineType": "Item", "itemId": items["1920-S"]["id"], "quantity": 1}],
        },
    )
    refused = requests.post(
        f"{connector.base}/invoices/{draft['id']}/create-in-dataverse", headers=connector.headers, timeout=60
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "NotPosted"
    bc_actions.post(f"salesInvoices({draft['id']})/Microsoft.NAV.post")
    invoice_id = connector.post(f"invoices/{draft['id']}/create-in-dataverse", expect=201)["coupling"]["dataverseId"]
    assert _state(dataverse, invoice_id) == (0, 4)
    bc_actions.post(f"salesInvoices({draft['id']})/Microsoft.NAV.cancel")
    answer = connector.post(f"customers/{adatum['id']}/update-statistics")
    statistics, payments = answer["jobs"]
    assert (payments["modified"], payments["failed"], statistics["failed"]) == (1, 0, 0)
    assert _state(dataverse, invoice_id) == (3, 100003)  # Canceled / Canceled


def test_every_run_is_in_the_job_log_and_an_uncoupled_customer_is_refused(connector: Connector) -> None:
    for job in ("POSTEDSALESINV-INV", "INVOICE PAYMENT STATUS", "CUSTOMER STATISTICS"):
        jobs = connector.get("jobs", mapping=job)["value"]
        assert jobs and all(j["finishedAt"] for j in jobs), job
        # A run with a failed record is Failed and says so; the others succeeded.
        assert all(j["status"] == ("Failed" if j["failed"] else "Succeeded") for j in jobs), job
    # Two runs of the refused order invoice, one request for a draft.
    assert sum(j["failed"] for j in connector.get("jobs", mapping="POSTEDSALESINV-INV")["value"]) == 3
    response = requests.post(
        f"{connector.base}/customers/00000000-0000-0000-0000-0000000000aa/update-statistics",
        headers=connector.headers,
        timeout=60,
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "NotCoupled"
    missing = requests.post(
        f"{connector.base}/invoices/00000000-0000-0000-0000-0000000000aa/create-in-dataverse",
        headers=connector.headers,
        timeout=60,
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
