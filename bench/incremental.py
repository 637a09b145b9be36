"""Scheduled incremental synchronization: everything coupled, 10 records changed on each side.

A fresh stack on the benchmark data set (see ``bench.full_sync``) is fully synchronized first,
then 10 BC customers change in BC and 10 accounts change in Sales (by a seller, not by the
connector's own user, so the echo rule does not hide them). One run of the scheduled sync timer
(``timer_sync_mappings``, started through the host's admin endpoint as Azure Functions does)
carries both sets across; the emulators count the API requests each side received.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from bench._measure import QUIET
from emulators._http.client import BackDoor, https_session
from emulators.stack import LocalStack, start_local_stack

CUSTOMERS = int(os.environ.get("BENCH_INCREMENTAL_CUSTOMERS", "2000"))
CHANGED = 10


@dataclass(frozen=True)
class IncrementalResult:
    customers: int
    seconds: float
    dataverse_requests: int
    dataverse_writes: int
    bc_requests: int
    bc_writes: int
    arrived_in_dataverse: int
    arrived_in_bc: int


def _writes(by_kind: dict[str, int]) -> int:
    # A $batch of GETs (counted as "POST $batch of reads" by the emulators) is a read.
    return sum(n for kind, n in by_kind.items() if not kind.startswith("GET") and not kind.endswith("of reads"))


def _full_sync(stack: LocalStack) -> None:
    base = str(stack.host.start_line["base_url"])
    headers = {"x-functions-key": str(stack.host.start_line["function_key"])}
    run_id = requests.post(f"{base}/fullsync", headers=headers, timeout=600).json()["runId"]
    while requests.get(f"{base}/fullsync/{run_id}", headers=headers, timeout=60).json()["status"] != "Finished":
        time.sleep(0.5)


def _change(session: requests.Session, url: str, body: dict[str, str], auth: dict[str, str]) -> None:
    session.patch(url, json=body, headers={**auth, "If-Match": "*"}, timeout=60).raise_for_status()


def _run_timer(stack: LocalStack) -> None:
    """One run of the scheduled sync, started through the host's admin endpoint."""
    root = str(stack.host.start_line["base_url"]).removesuffix("/api")
    answer = requests.post(
        f"{root}/admin/functions/timer_sync_mappings",
        headers={"x-functions-key": str(stack.host.start_line["function_key"])},
        json={},
        timeout=600,
    )
    if answer.status_code != 202 or answer.json().get("status") != "Succeeded":
        raise RuntimeError(f"the timer run failed: {answer.text}")


def run(customers: int = CUSTOMERS) -> IncrementalResult:
    """Set up, change 10 records on each side, run the timer once, and count."""
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        stack = start_local_stack(
            workdir=Path(tmp),
            seed=f"bench:{customers}",
            settings_overrides=QUIET,
        )
        try:
            _full_sync(stack)
            bc_start, dv_start = stack.business_central.start_line, stack.dataverse.start_line
            bc_door, dv_door = BackDoor(bc_start), BackDoor(dv_start)
            # A seller of their own (an application user here, standing for a person) edits in Sales.
            seller = str(uuid.uuid4())
            dv_door.seed(
                {"rows": {"systemuser": [{"firstname": "Sam", "lastname": "Seller", "applicationid": seller}]}}
            )
            seller_token = dv_door.call("POST", "token", {"client_id": seller, "audience": dv_start["org_url"]})
            dv = https_session(str(dv_start["ca_bundle"]))
            dv_auth = {"Authorization": f"Bearer {seller_token['access_token']}"}
            accounts = dv.get(
                f"{dv_start['base_url']}/accounts",
                params={"$select": "accountid,name", "$top": str(CHANGED), "$orderby": "name desc"},
                headers=dv_auth,
                timeout=60,
            ).json()["value"]
            bc = https_session(str(bc_start["ca_bundle"]))
            bc_auth = {"Authorization": f"Bearer {bc_door.mint_token()}"}
            company = f"{bc_start['base_url']}/companies({bc_start['company_id']})"
            customers_ = bc.get(
                f"{company}/customers",
                params={"$top": str(CHANGED), "$orderby": "number asc"},
                headers=bc_auth,
                timeout=60,
            ).json()["value"]
            # The first scheduled run after a full sync has no watermarks and reads everything; the
            # steady state measured below starts from the watermarks it leaves. The seeded records
            # were all written within a second, so one later change moves the watermarks past the
            # 5-second overlap that would otherwise read them again.
            time.sleep(6)
            _change(dv, f"{dv_start['base_url']}/accounts({accounts[-1]['accountid']})", {"fax": "0"}, dv_auth)
            _change(bc, f"{company}/customers({customers_[-1]['id']})", {"website": "tick.example"}, bc_auth)
            for entity_set, query in (("contacts", "type eq 'Person'"), ("items", "blocked eq false")):
                (first,) = bc.get(
                    f"{company}/{entity_set}", params={"$filter": query, "$top": "1"}, headers=bc_auth, timeout=60
                ).json()["value"]
                _change(bc, f"{company}/{entity_set}({first['id']})", {"displayName": "Tick"}, bc_auth)
            time.sleep(3)
            _run_timer(stack)
            time.sleep(6)
            for account in accounts:
                dv.patch(
                    f"{dv_start['base_url']}/accounts({account['accountid']})",
                    json={"telephone1": "+32 3 000 00 00"},
                    headers={**dv_auth, "If-Match": "*"},
                    timeout=60,
                ).raise_for_status()
            for customer in customers_:
                bc.patch(
                    f"{company}/customers({customer['id']})",
                    json={"city": "Mechelen"},
                    headers={**bc_auth, "If-Match": "*"},
                    timeout=60,
                ).raise_for_status()
            # The scheduled pass reads up to a signpost a little before its start (writes still
            # committing are not stepped over), so the changes must be that old.
            time.sleep(3)
            for door in (bc_door, dv_door):
                door.request_counts(reset=True)
            started = time.perf_counter()
            _run_timer(stack)
            seconds = time.perf_counter() - started
            dv_counts, bc_counts = dv_door.request_counts(), bc_door.request_counts()
            in_bc = len(
                bc.get(
                    f"{company}/customers",
                    params={"$filter": "phoneNumber eq '+32 3 000 00 00'", "$select": "id"},
                    headers=bc_auth,
                    timeout=60,
                ).json()["value"]
            )
            cities = [
                r.get("address1_city")
                for r in dv.get(
                    f"{dv_start['base_url']}/accounts",
                    params={"$select": "address1_city", "$filter": "address1_city eq 'Mechelen'"},
                    headers=dv_auth,
                    timeout=60,
                ).json()["value"]
            ]
            return IncrementalResult(
                customers=customers,
                seconds=seconds,
                dataverse_requests=dv_counts["requests"],
                dataverse_writes=_writes(dv_counts["by_kind"]),
                bc_requests=bc_counts["requests"],
                bc_writes=_writes(bc_counts["by_kind"]),
                arrived_in_dataverse=len(cities),
                arrived_in_bc=in_bc,
            )
        finally:
            stack.stop()


def section() -> str:
    """Run the benchmark and return its part of ``docs/benchmarks.md``."""
    r = run()
    return f"""## Scheduled incremental synchronization (everything coupled)

{r.customers:,} customers, {r.customers:,} contacts and {r.customers // 10:,} items, all coupled by a full
synchronization; then {CHANGED} customers change in BC and {CHANGED} accounts change in Sales (by a seller).
One run of the scheduled sync timer (every mapping, both passes) carries them across
({r.arrived_in_dataverse} of {CHANGED} BC changes arrived in Sales, {r.arrived_in_bc} of {CHANGED} Sales changes
in BC). Requests are counted by the emulators.

| side | requests | of which writes | reads | seconds (whole run) |
|---|---:|---:|---:|---:|
| Dataverse | {r.dataverse_requests} | {r.dataverse_writes} | {r.dataverse_requests - r.dataverse_writes} \
| {r.seconds:.1f} |
| Business Central | {r.bc_requests} | {r.bc_writes} | {r.bc_requests - r.bc_writes} | |

Target: at most 3 reads per side plus the writes. The run reads every mapping's window on each
side in one `$batch` of GETs (changed records only, at the maximum page size; a window with more
pages follows its nextLink), then per mapping with changes reads the coupled destination records
by id in bulk and writes in bulk (Dataverse: one more read, of the new `modifiedon` stamps, which
`UpdateMultiple` does not return). Records a window's 5-second overlap reads again, unchanged
since their last sync, are decided from their couplings: nothing else is read for them.
"""
