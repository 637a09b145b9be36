"""The sync engine end to end on a fresh local stack of its own: full synchronization of the demo
data, a second full sync that changes nothing, and incremental sync on the schedule.

The stack is this module's alone (started like ``make run`` does), because a full sync rewrites
both emulators and the coupling tables, which the session-wide stack's other tests rely on.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators._http.client import BackDoor
from emulators.stack import PROJECT_ROOT, LocalStack, start_local_stack
from shared.adapters.business_central import BusinessCentralAdapter
from shared.adapters.clock import SystemClock
from shared.adapters.dataverse import DataverseAdapter
from shared.adapters.tables import TableLeaseStore, open_table_state
from shared.config import Settings, TableStorageSettings, load_settings
from shared.ports import RecordChange
from shared.resources import TABLE_LEASES
from shared.usecases._lease import hold_mapping
from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host
from tests.stack._apis import business_central_adapter, dataverse_adapter

pytestmark = pytest.mark.stack

FULL_SYNC_LINES = {
    "SALESPEOPLE",
    "CURRENCY",
    "UNIT OF MEASURE",
    "PAYMENT TERMS",
    "SHIPMENT METHOD",
    "CUSTOMER",
    "CONTACT",
    "ITEM-PRODUCT",
}


class Connector:
    """The connector's HTTP surface on the module's stack."""

    def __init__(self, stack: LocalStack) -> None:
        self.base = str(stack.host.start_line["base_url"])
        self.headers = {"x-functions-key": str(stack.host.start_line["function_key"])}

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(f"{self.base}/{path}", headers=self.headers, params=params, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None, expect: int = 200) -> Any:
        response = requests.post(f"{self.base}/{path}", headers=self.headers, json=body or {}, timeout=120)
        assert response.status_code == expect, response.text
        return response.json()

    def full_sync(self, timeout: float = 120) -> dict[str, Any]:
        run_id = self.post("fullsync", expect=202)["runId"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"fullsync/{run_id}")
            if run["status"] == "Finished":
                return run
            time.sleep(0.5)
        raise AssertionError(f"full sync {run_id} did not finish: {self.get(f'fullsync/{run_id}')}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # The schedules are pinned far away: the tests run the timer themselves, and a scheduled run
    # landing in the middle of a test would make its counts depend on the clock.
    started = start_local_stack(
        workdir=tmp_path_factory.mktemp("sync-stack"),
        seed="demo",
        settings_overrides={"SCHEDULE_MAPPING_SYNC": "0 0 0 1 1 *", "SCHEDULE_WEBHOOK_RENEWAL": "0 0 0 1 1 *"},
    )
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def connector(stack: LocalStack) -> Connector:
    return Connector(stack)


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    return load_settings(stack.settings)


@pytest.fixture(scope="module")
def dataverse(settings: Settings) -> DataverseAdapter:
    return dataverse_adapter(settings)


@pytest.fixture(scope="module")
def bc(settings: Settings) -> BusinessCentralAdapter:
    return business_central_adapter(settings)


def _rows(dataverse: DataverseAdapter, entity_set: str, odata_filter: str | None = None) -> list[dict[str, Any]]:
    return [r for page in dataverse.list_rows(entity_set, filter=odata_filter) for r in page]


def _records(bc: BusinessCentralAdapter, entity_set: str, odata_filter: str | None = None) -> list[dict[str, Any]]:
    return [r for page in bc.list_records(entity_set, filter=odata_filter) for r in page]


def _coupled_dataverse_id(connector: Connector, mapping: str, bc_id: str) -> str:
    return str(connector.get(f"couplings/{mapping}", bcId=bc_id)["dataverseId"])


@pytest.fixture(scope="module")
def first_run(connector: Connector) -> dict[str, Any]:
    return connector.full_sync()


def test_full_sync_finishes_every_line_in_dependency_order(first_run: dict[str, Any]) -> None:
    lines = {line["mapping"]: line for line in first_run["lines"]}
    assert set(lines) == FULL_SYNC_LINES
    problems = {name: line["message"] for name, line in lines.items() if line["status"] != "Finished"}
    assert problems == {}

    def jobs(line: dict[str, Any]) -> list[dict[str, Any]]:
        return [j for j in (line["couplingJob"], line["toDataverseJob"], line["fromDataverseJob"]) if j]

    for line in lines.values():
        started = min(j["startedAt"] for j in jobs(line))
        for dependency in line["dependencies"]:
            assert all(j["finishedAt"] <= started for j in jobs(lines[dependency])), (line["mapping"], dependency)
        assert all(j["failed"] == 0 for j in jobs(line)), line


def test_records_on_both_sides_are_coupled_not_duplicated(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    adatum = _records(bc, "customers", "displayName eq 'Adatum Corporation'")
    accounts = _rows(dataverse, "accounts", "name eq 'Adatum Corporation'")
    assert len(adatum) == 1 and len(accounts) == 1
    assert _coupled_dataverse_id(connector, "CUSTOMER", adatum[0]["id"]) == accounts[0]["accountid"]
    # The BC salesperson JO and the Sales user Jim Olive share an e-mail: coupled, code kept.
    jim = _records(bc, "salespeoplePurchasers", "code eq 'JO'")
    assert len(jim) == 1 and jim[0]["displayName"] == "Jim Olive"
    user = _rows(dataverse, "systemusers", "internalemailaddress eq 'jim.olive@cronus.example'")[0]
    assert _coupled_dataverse_id(connector, "SALESPEOPLE", jim[0]["id"]) == user["systemuserid"]
    # Adatum's owner in Sales is now its BC salesperson.
    assert accounts[0]["ownerid"] == user["systemuserid"]


def test_records_on_one_side_are_created_on_the_other_with_their_values(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    # BC → Sales: a customer only BC had.
    (ugo,) = _records(bc, "customers", "number eq 'C00040'")
    account = dataverse.get_rows("accounts", [_coupled_dataverse_id(connector, "CUSTOMER", ugo["id"])])
    (row,) = account.values()
    assert row["name"] == ugo["displayName"] and row["address1_city"] == ugo["city"]
    assert row["customertypecode"] == 3
    # Sales → BC: an account only Sales had.
    (cafe,) = _rows(dataverse, "accounts", "accountnumber eq '40000'")
    coupling = connector.get("couplings/CUSTOMER", dataverseId=cafe["accountid"])
    customer = bc.get_records("customers", [coupling["bcId"]])[coupling["bcId"]]
    assert customer["displayName"] == cafe["name"] and customer["city"] == cafe["address1_city"]
    # Items ↔ products, units through the UNIT OF MEASURE couplings.
    (desk,) = _rows(dataverse, "products", "productnumber eq '1896-S'")
    assert desk["name"] == "ATHENS Desk"
    (bicycle,) = _records(bc, "items", "displayName eq 'Bicycle'")
    (pcs,) = _records(bc, "unitsOfMeasure", "code eq 'PCS'")
    assert bicycle["baseUnitOfMeasureId"] == pcs["id"]
    # Currencies coupled by ISO code, not duplicated.
    assert len(_rows(dataverse, "transactioncurrencies", "isocurrencycode eq 'USD'")) == 1


def test_a_second_full_sync_changes_nothing(first_run: dict[str, Any], connector: Connector) -> None:
    second = connector.full_sync()
    for line in second["lines"]:
        assert line["status"] == "Finished", line
        for job in (line["couplingJob"], line["toDataverseJob"], line["fromDataverseJob"]):
            if job:
                changed = {k: job[k] for k in ("inserted", "modified", "deleted", "failed", "coupled") if job[k]}
                assert changed == {}, (line["mapping"], job["direction"], changed)


def test_a_change_reaches_the_other_side_with_the_scheduled_sync(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    stack: LocalStack,
) -> None:
    (adatum,) = _records(bc, "customers", "number eq 'C00010'")
    (outcome,) = bc.update_records(
        "customers", [RecordChange(adatum["id"], {"city": "Mechelen"}, etag=adatum["@odata.etag"])]
    )
    assert outcome.ok, outcome.error
    # The scheduled pass reads up to a signpost a little before its start, so that writes still
    # committing are not stepped over; a change older than that is in the very next run.
    time.sleep(2.5)
    run = requests.post(
        f"{str(stack.host.start_line['base_url']).removesuffix('/api')}/admin/functions/timer_sync_mappings",
        headers={"x-functions-key": str(stack.host.start_line["function_key"])},
        json={},
        timeout=120,
    )
    assert run.status_code == 202 and run.json()["status"] == "Succeeded", run.text
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", adatum["id"])
    assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] == "Mechelen"


def _run_timer(stack: LocalStack) -> None:
    root = str(stack.host.start_line["base_url"]).removesuffix("/api")
    run = requests.post(
        f"{root}/admin/functions/timer_sync_mappings",
        headers={"x-functions-key": str(stack.host.start_line["function_key"])},
        json={},
        timeout=180,
    )
    assert run.status_code == 202 and run.json()["status"] == "Succeeded", run.text


def _create_bc(bc: BusinessCentralAdapter, entity_set: str, values: dict[str, Any]) -> str:
    (outcome,) = bc.create_records(entity_set, [values])
    assert outcome.ok and outcome.record_id, outcome.error
    return outcome.record_id.lower()


def test_an_uncoupled_dependency_is_named_and_the_record_goes_through_once_it_is_coupled(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    salesperson = _create_bc(bc, "salespeoplePurchasers", {"code": "NEWSP", "displayName": "New Seller"})
    customer = _create_bc(bc, "customers", {"displayName": "Dependency Test NV", "salespersonCode": "NEWSP"})

    refused = requests.post(
        f"{connector.base}/records/CUSTOMER/{customer}/create-in-dataverse", headers=connector.headers, timeout=60
    )
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "NEWSP must be coupled to a record in SALESPEOPLE" in message and "first" in message

    # Couple the salesperson to Bob (uncoupling the one the full sync created for him), then retry.
    bob = _rows(dataverse, "systemusers", "internalemailaddress eq 'bob@contoso.invalid'")[0]
    previous = connector.get("couplings/SALESPEOPLE", dataverseId=bob["systemuserid"])
    requests.delete(
        f"{connector.base}/couplings/SALESPEOPLE/{previous['bcId']}", headers=connector.headers, timeout=60
    ).raise_for_status()
    connector.post("couplings/SALESPEOPLE", {"bcId": salesperson, "dataverseId": bob["systemuserid"]}, expect=201)
    created = connector.post(f"records/CUSTOMER/{customer}/create-in-dataverse", expect=201)
    account_id = created["coupling"]["dataverseId"]
    account = dataverse.get_rows("accounts", [account_id])[account_id]
    assert account["name"] == "Dependency Test NV" and account["ownerid"] == bob["systemuserid"]


def test_the_same_error_twice_skips_a_record_and_restore_brings_it_back(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, stack: LocalStack
) -> None:
    _create_bc(bc, "salespeoplePurchasers", {"code": "LONER", "displayName": "Nobody In Sales"})
    (trey,) = _records(bc, "customers", "number eq 'C00020'")
    (outcome,) = bc.update_records(
        "customers", [RecordChange(trey["id"], {"salespersonCode": "LONER"}, etag=trey["@odata.etag"])]
    )
    assert outcome.ok, outcome.error
    time.sleep(2.5)
    _run_timer(stack)  # fails: LONER is coupled to no Sales user
    first = connector.get("couplings/CUSTOMER", bcId=trey["id"])
    assert first["lastResultToDataverse"] == "Failure" and first["skipped"] is False
    _run_timer(stack)  # the same error again: skipped from now on
    skipped = connector.get("errors", mapping="CUSTOMER")["skipped"]
    assert [c["bcId"] for c in skipped] == [trey["id"].lower()]
    assert "LONER must be coupled to a record in SALESPEOPLE" in skipped[0]["lastError"]

    restored = connector.post("skipped/CUSTOMER/restore", {"bcIds": [trey["id"]]})
    assert restored["restored"] == [trey["id"].lower()]
    assert connector.get("errors", mapping="CUSTOMER")["skipped"] == []
    # Put the salesperson back so later tests see a healthy customer.
    (trey,) = _records(bc, "customers", "number eq 'C00020'")
    bc.update_records("customers", [RecordChange(trey["id"], {"salespersonCode": "PS"}, etag=trey["@odata.etag"])])


def test_a_deleted_coupled_row_is_a_deletion_conflict_named_by_the_default_rule(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    stack: LocalStack,
) -> None:
    (school,) = _records(bc, "customers", "number eq 'C00030'")
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", school["id"])
    (deleted,) = dataverse.delete_rows("accounts", [account_id])
    assert deleted.ok
    (outcome,) = bc.update_records(
        "customers", [RecordChange(school["id"], {"city": "Leuven"}, etag=school["@odata.etag"])]
    )
    assert outcome.ok
    time.sleep(2.5)
    _run_timer(stack)
    coupling = connector.get("couplings/CUSTOMER", bcId=school["id"])
    assert "cannot be updated because it is coupled to a deleted record" in coupling["lastError"]
    assert dataverse.get_rows("accounts", [account_id]) == {}  # nothing was recreated behind the rule's back


def test_match_based_coupling_couples_only_unique_uncoupled_matches_and_reports_the_rest(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    solo = _create_bc(bc, "customers", {"displayName": "Solo Match BV"})
    twin = _create_bc(bc, "customers", {"displayName": "Twin Match BV"})
    created = dataverse.create_rows(
        "accounts",
        [
            {"name": "solo match bv", "customertypecode": 3},  # case differs: still a match
            {"name": "Twin Match BV", "customertypecode": 3},
            {"name": "Twin Match BV", "customertypecode": 3},
        ],
    )
    assert all(o.ok for o in created)
    job_id = connector.post("couplings/CUSTOMER/match", expect=202)["jobId"]
    deadline = time.monotonic() + 60
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = next(j for j in connector.get("jobs", mapping="CUSTOMER")["value"] if j["id"] == job_id)
        if job["finishedAt"]:
            break
        time.sleep(0.5)
    assert job["type"] == "Coupling" and job["coupled"] >= 1, job
    assert "no unique uncoupled matching entity was found" in job["message"]
    assert _coupled_dataverse_id(connector, "CUSTOMER", solo) == str(created[0].record_id).lower()
    missing = requests.get(
        f"{connector.base}/couplings/CUSTOMER", headers=connector.headers, params={"bcId": twin}, timeout=30
    )
    assert missing.status_code == 404


def test_concurrent_writers_of_one_new_record_create_it_exactly_once(
    first_run: dict[str, Any], connector: Connector, bc: BusinessCentralAdapter, dataverse: DataverseAdapter
) -> None:
    # Four "Create in Business Central" requests for the same new account race each other; the
    # mapping's lease lets one create and couple it, and the others find the coupling.
    (created,) = dataverse.create_rows("accounts", [{"name": "Race Condition GmbH", "customertypecode": 3}])
    assert created.ok and created.record_id
    barrier = threading.Barrier(4)
    answers: list[requests.Response] = []

    def create() -> None:
        barrier.wait()
        answers.append(
            requests.post(
                f"{connector.base}/records/CUSTOMER/create-in-bc",
                headers=connector.headers,
                json={"dataverseId": created.record_id},
                timeout=120,
            )
        )

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"AlreadyCoupled"}
    customers = _records(bc, "customers", "displayName eq 'Race Condition GmbH'")
    assert len(customers) == 1
    coupling = connector.get("couplings/CUSTOMER", dataverseId=created.record_id)
    assert coupling["bcId"] == customers[0]["id"].lower()


def test_a_scheduled_run_leaves_a_busy_mapping_to_the_next_run_without_losing_its_changes(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    stack: LocalStack,
) -> None:
    state = open_table_state(TableStorageSettings(connection_string=stack.azurite.connection_string))
    leases = TableLeaseStore(state.table(TABLE_LEASES))
    (customer,) = _records(bc, "customers", "number eq 'C00010'")
    (outcome,) = bc.update_records(
        "customers", [RecordChange(customer["id"], {"city": "Brugge"}, etag=customer["@odata.etag"])]
    )
    assert outcome.ok, outcome.error
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", customer["id"])
    time.sleep(2.5)
    try:
        with hold_mapping("CUSTOMER", "another-writer", leases=leases, clock=SystemClock()):
            _run_timer(stack)  # every other mapping runs; CUSTOMER waits for its writer
            assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] != "Brugge"
        _run_timer(stack)  # the next run picks the change up: its watermark did not move
        assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] == "Brugge"
    finally:
        state.close()


@pytest.fixture(scope="module")
def sales_user(stack: LocalStack) -> requests.Session:
    """A session acting as someone in Sales other than the connector (a second application user):
    what the connector's Sales pass must pick up, unlike its own writes."""
    door = BackDoor(stack.dataverse.start_line)
    app_id = str(uuid.uuid4())
    door.seed({"rows": {"systemuser": [{"firstname": "Sales", "lastname": "Person", "applicationid": app_id}]}})
    token = door.call("POST", "token", {"client_id": app_id, "audience": stack.dataverse.start_line["org_url"]})
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token['access_token']}", "If-Match": "*"})
    return session


def _edit_in_sales(stack: LocalStack, session: requests.Session, account_id: str, values: dict[str, Any]) -> None:
    # modifiedon has whole seconds: keep a person's edit out of the second of the connector's last write.
    time.sleep(1.1)
    answer = session.patch(
        f"{stack.dataverse.start_line['base_url']}/accounts({account_id})",
        json=values,
        timeout=30,
        verify=str(stack.dataverse.start_line["ca_bundle"]),  # per request: REQUESTS_CA_BUNDLE beats session.verify
    )
    assert answer.status_code == 204, answer.text


def _latest_jobs(connector: Connector, mapping: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for job in connector.get("jobs", mapping=mapping)["value"]:  # newest first
        if job["type"] == "Synchronization":
            latest.setdefault(job["direction"], job)
    return latest


def test_a_sales_change_reaches_bc_with_the_scheduled_sync_and_the_connectors_own_writes_are_not_echoed(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    stack: LocalStack,
    sales_user: requests.Session,
) -> None:
    (trey,) = _records(bc, "customers", "number eq 'C00020'")
    (cafe,) = _records(bc, "customers", "number eq 'C00040'")
    (outcome,) = bc.update_records(
        "customers", [RecordChange(cafe["id"], {"city": "Oostende"}, etag=cafe["@odata.etag"])]
    )
    assert outcome.ok, outcome.error
    _edit_in_sales(
        stack, sales_user, _coupled_dataverse_id(connector, "CUSTOMER", trey["id"]), {"address1_city": "Gent"}
    )
    time.sleep(2.5)
    _run_timer(stack)  # BC → Sales writes Oostende (as the connector); Sales → BC brings Gent
    assert bc.get_records("customers", [trey["id"]])[trey["id"]]["city"] == "Gent"
    jobs = _latest_jobs(connector, "CUSTOMER")
    assert jobs["toDataverse"]["modified"] == 1 and jobs["fromDataverse"]["modified"] == 1, jobs
    time.sleep(2.5)
    _run_timer(stack)
    # The Sales pass does not even read the connector's own write of Oostende (the echo rule: a
    # row last modified by the connector's user is left out of the query). What it does read is
    # Gent once more, through the watermark's overlap, and finds it unchanged: one row, not two.
    # BC has no "modified by", so the BC pass reads Gent back and finds it unchanged by the
    # coupling's timestamps.
    jobs = _latest_jobs(connector, "CUSTOMER")
    from_sales = {k: jobs["fromDataverse"][k] for k in ("inserted", "modified", "unchanged", "failed")}
    assert from_sales == {"inserted": 0, "modified": 0, "unchanged": 1, "failed": 0}, jobs["fromDataverse"]
    to_sales = {k: jobs["toDataverse"][k] for k in ("inserted", "modified", "failed")}
    assert to_sales == {"inserted": 0, "modified": 0, "failed": 0}, jobs["toDataverse"]


def test_a_sales_change_is_not_lost_when_the_bc_pass_rereads_its_record_unchanged(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    stack: LocalStack,
    sales_user: requests.Session,
) -> None:
    (customer,) = _records(bc, "customers", "number eq 'C00040'")
    (outcome,) = bc.update_records(
        "customers", [RecordChange(customer["id"], {"city": "Knokke"}, etag=customer["@odata.etag"])]
    )
    assert outcome.ok, outcome.error
    time.sleep(2.5)
    _run_timer(stack)  # Knokke reaches Sales; the BC record is now the newest the BC pass has seen
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", customer["id"])
    _edit_in_sales(stack, sales_user, account_id, {"address1_line1": "Zeedijk 1"})
    time.sleep(2.5)
    # The BC pass re-reads the customer through its watermark's overlap and finds it unchanged;
    # that must not hide the seller's edit from the Sales pass that follows.
    _run_timer(stack)
    assert bc.get_records("customers", [customer["id"]])[customer["id"]]["addressLine1"] == "Zeedijk 1"


def test_synchronize_now_follows_the_changed_side_refuses_a_conflicting_merge_and_obeys_a_chosen_direction(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    stack: LocalStack,
    sales_user: requests.Session,
) -> None:
    (school,) = _records(bc, "customers", "number eq 'C00020'")
    bc_id = school["id"]
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", bc_id)
    time.sleep(1.1)
    (outcome,) = bc.update_records("customers", [RecordChange(bc_id, {"city": "Hasselt"}, etag=school["@odata.etag"])])
    assert outcome.ok, outcome.error
    # Only BC changed: the default sends BC's values.
    answer = connector.post(f"records/CUSTOMER/{bc_id}/sync")
    assert [j["direction"] for j in answer["jobs"]] == ["toDataverse"]
    assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] == "Hasselt"

    # Both sides change the same bidirectional field: a merge is refused, nothing is written.
    (school,) = _records(bc, "customers", "number eq 'C00020'")
    bc.update_records("customers", [RecordChange(bc_id, {"city": "Aalst"}, etag=school["@odata.etag"])])
    _edit_in_sales(stack, sales_user, account_id, {"address1_city": "Lier"})
    refused = requests.post(
        f"{connector.base}/records/CUSTOMER/{bc_id}/sync",
        headers=connector.headers,
        json={"direction": "merge"},
        timeout=60,
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "MergeConflict", refused.text
    assert bc.get_records("customers", [bc_id])[bc_id]["city"] == "Aalst"
    assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] == "Lier"

    # The administrator picks Sales: BC is overwritten with the Sales value.
    connector.post(f"records/CUSTOMER/{bc_id}/sync", {"direction": "fromDataverse"})
    assert bc.get_records("customers", [bc_id])[bc_id]["city"] == "Lier"


# -- conflict rules other than the defaults: a second host on the same stack, configured by overrides
CONFLICT_OVERRIDES = {
    "mappings": {
        "CUSTOMER": {"deletionConflict": "RemoveCoupling", "updateConflict": "GetUpdateFromDataverse"},
        "CONTACT": {"deletionConflict": "RestoreRecords"},
    }
}


@pytest.fixture(scope="module")
def overridden(stack: LocalStack) -> Iterator[FunctionsHostHandle]:
    # Only HTTP and the timer (run by hand) are used: nothing is queued while it runs.
    settings = stack.settings | {"MAPPING_OVERRIDES": json.dumps(CONFLICT_OVERRIDES)}
    with start_functions_host(PROJECT_ROOT, settings) as host:
        yield host


def _run_timer_on(host: FunctionsHostHandle) -> None:
    result = host.run_function("timer_sync_mappings", timeout=180)
    assert result["status"] == "Succeeded", result


def test_overridden_rules_are_what_the_mappings_route_shows(overridden: FunctionsHostHandle) -> None:
    answer = requests.get(overridden.url("mappings/CUSTOMER"), headers=overridden.key_headers, timeout=30)
    assert answer.status_code == 200, answer.text
    customer = answer.json()
    assert (customer["updateConflict"], customer["deletionConflict"]) == ("GetUpdateFromDataverse", "RemoveCoupling")


def test_remove_coupling_forgets_a_pair_whose_sales_row_was_deleted(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    overridden: FunctionsHostHandle,
) -> None:
    bc_id = _create_bc(bc, "customers", {"displayName": "Removed Coupling BV"})
    account_id = connector.post(f"records/CUSTOMER/{bc_id}/create-in-dataverse", expect=201)["coupling"]["dataverseId"]
    (deleted,) = dataverse.delete_rows("accounts", [account_id])
    assert deleted.ok
    record = bc.get_records("customers", [bc_id])[bc_id]
    (outcome,) = bc.update_records("customers", [RecordChange(bc_id, {"city": "Ieper"}, etag=record["@odata.etag"])])
    assert outcome.ok
    time.sleep(2.5)
    _run_timer_on(overridden)
    gone = requests.get(f"{connector.base}/couplings/CUSTOMER", headers=connector.headers, params={"bcId": bc_id})
    assert gone.status_code == 404, gone.text
    assert _rows(dataverse, "accounts", "name eq 'Removed Coupling BV'") == []  # not recreated
    assert bc.get_records("customers", [bc_id])[bc_id]["displayName"] == "Removed Coupling BV"  # BC keeps its record


def test_restore_records_recreates_a_deleted_sales_row_and_couples_it_anew(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    overridden: FunctionsHostHandle,
) -> None:
    (robert,) = _records(bc, "contacts", "number eq 'CT000020'")
    old_row = _coupled_dataverse_id(connector, "CONTACT", robert["id"])
    (deleted,) = dataverse.delete_rows("contacts", [old_row])
    assert deleted.ok
    (outcome,) = bc.update_records(
        "contacts", [RecordChange(robert["id"], {"city": "Mortsel"}, etag=robert["@odata.etag"])]
    )
    assert outcome.ok
    time.sleep(2.5)
    _run_timer_on(overridden)
    new_row = _coupled_dataverse_id(connector, "CONTACT", robert["id"])
    assert new_row != old_row
    row = dataverse.get_rows("contacts", [new_row])[new_row]
    assert (row["firstname"], row["lastname"], row["address1_city"]) == ("Robert", "Townes", "Mortsel")


def test_an_update_conflict_goes_the_way_the_mapping_says(
    first_run: dict[str, Any],
    connector: Connector,
    bc: BusinessCentralAdapter,
    dataverse: DataverseAdapter,
    stack: LocalStack,
    sales_user: requests.Session,
    overridden: FunctionsHostHandle,
) -> None:
    (adatum,) = _records(bc, "customers", "number eq 'C00010'")
    account_id = _coupled_dataverse_id(connector, "CUSTOMER", adatum["id"])
    (outcome,) = bc.update_records(
        "customers", [RecordChange(adatum["id"], {"city": "Tienen"}, etag=adatum["@odata.etag"])]
    )
    assert outcome.ok
    _edit_in_sales(stack, sales_user, account_id, {"address1_city": "Halle"})
    time.sleep(2.5)
    _run_timer_on(overridden)  # both changed the bidirectional city: GetUpdateFromDataverse → Sales wins
    assert dataverse.get_rows("accounts", [account_id])[account_id]["address1_city"] == "Halle"
    assert bc.get_records("customers", [adatum["id"]])[adatum["id"]]["city"] == "Halle"
    coupling = connector.get("couplings/CUSTOMER", bcId=adatum["id"])
    assert coupling["lastResultToBc"] == "Success" and not coupling["skipped"]
