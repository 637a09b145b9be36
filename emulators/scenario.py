"""What ``make run`` and ``make demo`` do with a started local stack, through the connector's own
HTTP surface (and the emulators' back doors only where a person would act in Sales or BC).

``initial_sync``: the connector's main job once, so the running stack starts coupled: a full
synchronization, then push registration (BC webhooks, Dataverse service endpoint), with a summary
of what was synced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from emulators.stack import LocalStack

__all__ = ["Connector", "initial_sync"]

_COUNTERS = ("inserted", "modified", "coupled", "unchanged", "failed")


@dataclass
class Connector:
    """The connector's HTTP surface on a local stack."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, stack: LocalStack) -> Connector:
        """The connector of ``stack``, with its function key."""
        line = stack.host.start_line
        return cls(str(line["base_url"]), {"x-functions-key": str(line["function_key"])})

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        """Status and JSON answer of one route."""
        response = requests.request(
            method, f"{self.base}/{path}", headers=self.headers, json=body, params=params or None, timeout=180
        )
        return response.status_code, (response.json() if response.content else None)

    def run_timer(self, name: str) -> dict[str, Any]:
        """Run a timer function now (the host's admin endpoint), waiting for it to finish."""
        root = self.base.removesuffix("/api")
        response = requests.post(f"{root}/admin/functions/{name}", headers=self.headers, json={}, timeout=300)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def wait_for(check: Callable[[], Any], timeout: float, pause: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; ``None`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result or None
        time.sleep(pause)


def _line_summary(line: dict[str, Any]) -> str:
    totals = dict.fromkeys(_COUNTERS, 0)
    for job in (line.get("couplingJob"), line.get("toDataverseJob"), line.get("fromDataverseJob")):
        for counter in _COUNTERS:
            totals[counter] += int((job or {}).get(counter) or 0)
    counts = ", ".join(f"{n} {c}" for c, n in totals.items() if n) or "nothing to do"
    message = f" ({line['message']})" if line.get("message") else ""
    return f"  {line['mapping']:<18} {line['status']:<13} {counts}{message}"


def initial_sync(stack: LocalStack, *, timeout: float = 300) -> tuple[bool, list[str]]:
    """Full synchronization, then push registration; (everything worked, summary lines)."""
    connector = Connector.of(stack)
    lines = ["", "Full synchronization (POST /api/fullsync):"]
    status, started = connector.call("POST", "fullsync")
    if status != 202:
        return False, [*lines, f"  refused: {status} {started}"]
    run_id = started["runId"]
    began = time.monotonic()

    def finished() -> dict[str, Any] | None:
        _, run = connector.call("GET", f"fullsync/{run_id}")
        return run if run and run.get("status") == "Finished" else None

    run = wait_for(finished, timeout)
    if run is None:
        return False, [*lines, f"  not finished after {timeout:.0f} s; see GET /api/fullsync/{run_id}"]
    lines += [_line_summary(line) for line in run["lines"]]
    ok = all(line["status"] in ("Finished", "Nothing To Do") for line in run["lines"])
    lines.append(
        f"  {'finished' if ok else 'finished with errors (GET /api/errors)'} in {time.monotonic() - began:.1f} s"
    )
    status, setup = connector.call("POST", "setup/push")
    items = (setup or {}).get("items", [])
    failed = [i for i in items if i.get("action") == "failed"]
    lines += [
        "",
        f"Push registration (POST /api/setup/push): {len(items) - len(failed)} of {len(items)} in place"
        + (f"; not available here: {', '.join(sorted({i['name'] for i in failed}))}" if failed else ""),
    ]
    return ok and status in (200, 207), lines


# -- make demo: lead to cash ------------------------------------------------------------------------
@dataclass
class _Step:
    name: str
    ok: bool
    detail: str
    seconds: float


class _Person:
    """Someone working in Sales (a second application user: the connector skips its own writes)
    and in BC (a token of the BC tenant), as the demo's actor."""

    def __init__(self, stack: LocalStack) -> None:
        from emulators._http.client import BackDoor, https_session

        dataverse = stack.dataverse.start_line
        self._dataverse_base = str(dataverse["base_url"])
        self._dataverse = https_session(str(dataverse["ca_bundle"]))
        door = BackDoor(dataverse)
        app_id = "5a1e5000-0000-4000-8000-00000000de30"
        door.seed({"rows": {"systemuser": [{"firstname": "Sam", "lastname": "Seller", "applicationid": app_id}]}})
        token = door.call("POST", "token", {"client_id": app_id, "audience": dataverse["org_url"]})["access_token"]
        self._dataverse.headers["Authorization"] = f"Bearer {token}"
        bc = stack.business_central.start_line
        self._bc_base = f"{bc['base_url']}/companies({bc['company_id']})"
        self._bc = https_session(str(bc["ca_bundle"]))
        self._bc.headers["Authorization"] = f"Bearer {BackDoor(bc).mint_token()}"
        self._bc_door = BackDoor(bc)
        self.company_id = str(bc["company_id"])

    def sales(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        headers = {"If-Match": "*"} if method == "PATCH" else {}
        response = self._dataverse.request(
            method, f"{self._dataverse_base}/{path}", json=body, params=params or None, headers=headers, timeout=60
        )
        if response.status_code >= 300:
            raise RuntimeError(f"Sales {method} {path}: {response.status_code} {response.text[:300]}")
        if method == "POST" and not response.content:
            return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        return response.json() if response.content else None

    def first(self, entity_set: str, odata_filter: str, select: str) -> dict[str, Any] | None:
        rows = self.sales("GET", entity_set, **{"$filter": odata_filter, "$select": select})["value"]
        return rows[0] if rows else None

    def id_of(self, entity_set: str, odata_filter: str, key: str) -> str:
        row = self.first(entity_set, odata_filter, key)
        if row is None:
            raise RuntimeError(f"Sales has no {entity_set} with {odata_filter}")
        return str(row[key])

    def bc(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        response = self._bc.request(method, f"{self._bc_base}/{path}", json=body, params=params or None, timeout=60)
        if response.status_code >= 300:
            raise RuntimeError(f"BC {method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def bc_as_user(self, entity: str, record_id: str, fields: dict[str, Any]) -> None:
        """A change a BC user makes in the client (no API for it: e.g. releasing an order)."""
        self._bc_door.call(
            "POST", "patch", {"company": self.company_id, "entity": entity, "id": record_id, "fields": fields}
        )


def lead_to_cash(stack: LocalStack) -> tuple[bool, list[str]]:
    """The scripted scenario of ``make demo``; (every step passed, report lines)."""
    connector = Connector.of(stack)
    ok, lines = initial_sync(stack)
    steps: list[_Step] = []
    if not ok:
        return False, [*lines, "", "The initial synchronization failed; the scenario did not run."]
    person = _Person(stack)
    context: dict[str, Any] = {}

    def step(name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = action()
            passed = True
        except Exception as error:  # the report names the failing step and why
            detail, passed = f"{type(error).__name__}: {error}", False
        steps.append(_Step(name, passed, detail, time.monotonic() - started))
        return passed

    def new_account() -> str:
        account_id = person.sales(
            "POST", "accounts", {"name": "Fabrikam Demo Ltd", "customertypecode": 3, "address1_city": "Gent"}
        )
        # As in the built-in, a new Sales account is not pushed to BC uncoupled ("sync only coupled
        # records"): the administrator creates its customer, which couples the two.
        status, created = connector.call("POST", "records/CUSTOMER/create-in-bc", {"dataverseId": account_id})
        if status != 201:
            raise RuntimeError(f"create-in-bc answered {status}: {created}")
        customer = person.bc("GET", f"customers({created['coupling']['bcId']})")
        context.update(account=account_id, customer=customer)
        return (
            f"Sales account → 'Create in Business Central' → customer {customer['number']} '{customer['displayName']}'"
        )

    def submit_order() -> str:
        ids = {
            "pricelevel": person.id_of("pricelevels", "name eq 'Standard EUR'", "pricelevelid"),
            "eur": person.id_of("transactioncurrencies", "isocurrencycode eq 'EUR'", "transactioncurrencyid"),
            "pcs": person.id_of("uoms", "name eq 'PCS'", "uomid"),
            "bicycle": person.id_of("products", "productnumber eq '1000'", "productid"),
            "helmet": person.id_of("products", "productnumber eq '1001'", "productid"),
        }
        name = "Fleet of bicycles for Fabrikam"
        order_id = person.sales(
            "POST",
            "salesorders",
            {
                "name": name,
                "customerid_account@odata.bind": f"/accounts({context['account']})",
                "pricelevelid@odata.bind": f"/pricelevels({ids['pricelevel']})",
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({ids['eur']})",
                "order_details": [
                    {
                        "productid@odata.bind": f"/products({ids['bicycle']})",
                        "uomid@odata.bind": f"/uoms({ids['pcs']})",
                        "quantity": 4,
                    },
                    {
                        "productid@odata.bind": f"/products({ids['helmet']})",
                        "uomid@odata.bind": f"/uoms({ids['pcs']})",
                        "quantity": 4,
                    },
                ],
            },
        )
        person.sales("PATCH", f"salesorders({order_id})", {"statecode": 1, "statuscode": 3})  # Submit
        found = wait_for(
            lambda: person.bc("GET", "salesOrders", **{"$filter": f"externalDocumentNumber eq '{name}'"})["value"], 30
        )
        if not found:
            raise RuntimeError("no BC order within 30 s of submitting")
        context.update(order=order_id, bc_order=found[0])
        lines = person.bc("GET", f"salesOrders({found[0]['id']})/salesOrderLines")["value"]
        total = found[0]["totalAmountIncludingTax"]
        return f"submitted → BC order {found[0]['number']} with {len(lines)} lines, {total} incl. tax (pushed)"

    def ship_and_invoice() -> str:
        order = context["bc_order"]
        person.bc_as_user("salesOrders", order["id"], {"status": "Released"})
        person.bc("POST", f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
        invoices = person.bc("GET", "salesInvoices", **{"$filter": f"orderNumber eq '{order['number']}'"})["value"]
        context["invoice"] = invoices[0]
        return f"released, shipped and invoiced in BC: posted invoice {invoices[0]['number']}"

    def follow_up() -> str:
        connector.run_timer("timer_order_followup")
        order = person.sales("GET", f"salesorders({context['order']})", **{"$select": "statecode,statuscode"})
        posts = person.sales(
            "GET", "posts", **{"$filter": f"_regardingobjectid_value eq {context['order']}", "$select": "text"}
        )["value"]
        if order["statecode"] != 4:
            raise RuntimeError(f"the Sales order is in state {order['statecode']}, not Invoiced")
        return f"Sales order Invoiced; {len(posts)} posts on its timeline: " + " / ".join(
            sorted({p["text"] for p in posts})
        )

    def invoice_to_sales() -> str:
        # A scheduled run reads up to a moment a little before it starts (writes still committing
        # in BC are not stepped over): give the posting that moment, as the schedule would.
        time.sleep(2.5)
        connector.run_timer("timer_posted_invoices")
        invoice = person.first(
            "invoices", f"_salesorderid_value eq {context['order']}", "invoicenumber,statecode,statuscode,totalamount"
        )
        if invoice is None or (invoice["statecode"], invoice["statuscode"]) != (0, 4):
            raise RuntimeError(f"no Billed Sales invoice linked to the order: {invoice}")
        context["sales_invoice"] = invoice
        return f"Sales invoice {invoice['invoicenumber']} Billed, linked to the order, total {invoice['totalamount']}"

    def payment() -> str:
        invoice = context["invoice"]
        journal = person.bc("GET", "customerPaymentJournals", **{"$filter": "code eq 'GENERAL'"})["value"][0]
        person.bc(
            "POST",
            f"customerPaymentJournals({journal['id']})/customerPayments",
            {
                "customerId": context["customer"]["id"],
                "amount": invoice["totalAmountIncludingTax"],
                "appliesToInvoiceId": invoice["id"],
            },
        )
        person.bc("POST", f"journals({journal['id']})/Microsoft.NAV.post")
        time.sleep(2.5)
        connector.run_timer("timer_payment_status")
        paid = person.sales(
            "GET", f"invoices({context['sales_invoice']['invoiceid']})", **{"$select": "statecode,statuscode"}
        )
        if (paid["statecode"], paid["statuscode"]) != (2, 100001):
            raise RuntimeError(f"the Sales invoice is {paid['statecode']}/{paid['statuscode']}, not Paid/Complete")
        return "payment posted in BC → Sales invoice Paid / Complete"

    def statistics() -> str:
        status, body = connector.call("POST", f"customers/{context['customer']['id']}/update-statistics")
        if status != 200:
            raise RuntimeError(f"{status} {body}")
        account = person.sales(
            "GET", f"accounts({context['account']})", **{"$select": "_nav_accountstatisticsid_value"}
        )
        row_id = account.get("_nav_accountstatisticsid_value")
        if not row_id:
            raise RuntimeError("the account has no statistics row")
        row = person.sales("GET", f"nav_accountstatisticses({row_id})")
        shown = {
            k.removeprefix("nav_"): v for k, v in row.items() if k.startswith("nav_") and isinstance(v, int | float)
        }
        return "account statistics in Sales: " + ", ".join(f"{k} {v}" for k, v in sorted(shown.items())[:5])

    for name, action in (
        ("Lead: a new Sales account gets its BC customer", new_account),
        ("Order: submitted in Sales, created in BC", submit_order),
        ("Fulfilment in BC", ship_and_invoice),
        ("Order follow-up in Sales", follow_up),
        ("Invoice in Sales", invoice_to_sales),
        ("Cash: payment in BC, Paid in Sales", payment),
        ("Account statistics", statistics),
    ):
        if not step(name, action):
            break
    lines += ["", "Lead to cash:"]
    lines += [f"  [{'ok ' if s.ok else 'FAIL'}] {s.name} ({s.seconds:.1f} s): {s.detail}" for s in steps]
    passed = len(steps) == 7 and all(s.ok for s in steps)
    return passed, lines


def _coupling(connector: Connector, mapping: str, **query: str) -> dict[str, Any] | None:
    status, body = connector.call("GET", f"couplings/{mapping}", **query)
    return body if status == 200 else None
