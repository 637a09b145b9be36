"""A full synchronization whose passes go on over many queue messages.

With a page of 7 records and a step budget of 0 seconds, every page read ends its message: the
line stores where its source goes on and queues the next step, which reads on from there. The
result must be the same as in one go: every record created and coupled once, none twice, and a
second full sync that changes nothing. The stack is this module's alone (a full sync rewrites
both emulators and the coupling tables).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.stack import LocalStack, start_local_stack
from shared.config import load_settings
from tests.stack._apis import business_central_adapter, dataverse_adapter

pytestmark = pytest.mark.stack

CUSTOMERS = 30  # BC: 30 customers, their 30 company contacts, 30 person contacts and 3 items
PAGE = 7
NEVER = "0 0 0 1 1 *"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    started = start_local_stack(
        workdir=tmp_path_factory.mktemp("steps-stack"),
        seed=f"bench:{CUSTOMERS}",
        settings_overrides={
            "SCHEDULE_MAPPING_SYNC": NEVER,
            "SCHEDULE_WEBHOOK_RENEWAL": NEVER,
            "FULL_SYNC_STEP_SECONDS": "0",
            "FULL_SYNC_PAGE_SIZE": str(PAGE),
        },
    )
    try:
        yield started
    finally:
        started.stop()


def _full_sync(stack: LocalStack) -> dict[str, Any]:
    base = str(stack.host.start_line["base_url"])
    headers = {"x-functions-key": str(stack.host.start_line["function_key"])}
    answer = requests.post(f"{base}/fullsync", headers=headers, timeout=60)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["runId"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run = requests.get(f"{base}/fullsync/{run_id}", headers=headers, timeout=60).json()
        if run["status"] == "Finished":
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(f"the full sync did not finish: {run}")


@pytest.fixture(scope="module")
def first_run(stack: LocalStack) -> dict[str, Any]:
    return _full_sync(stack)


def test_a_pass_goes_on_over_several_messages_and_creates_each_record_once(
    stack: LocalStack, first_run: dict[str, Any]
) -> None:
    lines = {line["mapping"]: line for line in first_run["lines"]}
    assert {n: ln["status"] for n, ln in lines.items() if ln["status"] not in {"Finished", "Nothing To Do"}} == {}
    # 30 customers in pages of 7: five pages, one message each.
    assert lines["CUSTOMER"]["steps"] == -(-CUSTOMERS // PAGE)
    assert lines["CONTACT"]["steps"] > 1
    assert lines["CUSTOMER"]["toDataverseJob"]["inserted"] == CUSTOMERS

    settings = load_settings(stack.settings)
    bc, dataverse = business_central_adapter(settings), dataverse_adapter(settings)
    customers = [r for page in bc.list_records("customers") for r in page]
    accounts = [r for page in dataverse.list_rows("accounts") for r in page]
    assert len(customers) == CUSTOMERS
    # Every customer once in Sales, none twice, each coupled to the account with its name.
    assert Counter(a["name"] for a in accounts) == Counter(c["displayName"] for c in customers)
    base = str(stack.host.start_line["base_url"])
    headers = {"x-functions-key": str(stack.host.start_line["function_key"])}
    by_id = {a["accountid"]: a for a in accounts}
    for customer in customers:
        coupling = requests.get(
            f"{base}/couplings/CUSTOMER", headers=headers, params={"bcId": customer["id"]}, timeout=60
        ).json()
        assert by_id[coupling["dataverseId"]]["name"] == customer["displayName"]
    persons = [r for page in bc.list_records("contacts", filter="type eq 'Person'") for r in page]
    contacts = [r for page in dataverse.list_rows("contacts") for r in page]
    assert Counter(c["fullname"] for c in contacts) == Counter(p["displayName"] for p in persons)


def test_a_second_stepped_full_sync_changes_nothing(stack: LocalStack, first_run: dict[str, Any]) -> None:
    second = _full_sync(stack)
    for line in second["lines"]:
        assert line["status"] in {"Finished", "Nothing To Do"}, line
        for job in (line["couplingJob"], line["toDataverseJob"], line["fromDataverseJob"]):
            if job:
                changed = {k: job[k] for k in ("inserted", "modified", "deleted", "failed", "coupled") if job[k]}
                assert changed == {}, (line["mapping"], job["direction"], changed)
