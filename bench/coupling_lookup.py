"""Coupling lookups: the bulk lookup a sync page uses, against one point read per record.

A sync pass resolves the couplings of a whole page of source records before deciding anything;
this measures what that costs on Table Storage (Azurite) against the record-by-record baseline.
"""

from __future__ import annotations

import uuid

from azure.data.tables import TableServiceClient

from bench._measure import RequestCounter, StepResult, measure
from emulators._launch import free_port
from emulators.azurite import start_azurite
from shared.adapters.tables import TableCouplingStore, open_table_state
from shared.domain.state import Coupling
from shared.resources import TABLE_COUPLINGS

RECORDS = 2000
MAPPING = "BENCH-CUSTOMER"


def run(records: int = RECORDS) -> list[StepResult]:
    """Couple ``records`` pairs, then look them all up in bulk and one by one."""
    azurite = start_azurite(free_port())
    counter = RequestCounter()
    try:
        service = TableServiceClient.from_connection_string(azurite.connection_string, raw_request_hook=counter.hook)
        state = open_table_state(service)
        store = TableCouplingStore(state.table(TABLE_COUPLINGS))
        pairs = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(records)]

        def couple_all() -> None:
            for bc_id, dv_id in pairs:
                store.couple(Coupling(MAPPING, bc_id, dv_id))

        bc_ids = [b for b, _ in pairs]
        results = [measure("couple (one transaction per pair)", records, counter, couple_all)]

        def bulk() -> None:
            # A page of 5,000 Dataverse rows or 20,000 BC records is resolved the same way.
            found = store.get_many_by_bc_ids(MAPPING, bc_ids)
            assert len(found) == records

        def one_by_one() -> None:
            for bc_id in bc_ids:
                assert store.get_by_bc_id(MAPPING, bc_id) is not None

        results.append(measure("bulk lookup by BC id (15 keys per query, 8 in parallel)", records, counter, bulk))
        results.append(measure("baseline: point read per record (pair)", records, counter, one_by_one))
        state.close()
        return results
    finally:
        azurite.stop()


def section() -> str:
    """Run the benchmark and return its part of ``docs/benchmarks.md``."""
    results = run()
    rows = [
        "| step | records | requests | requests / record | records / s | peak memory (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {r.name} | {r.records:,} | {r.requests:,} | {r.requests_per_record:.3f} | "
            f"{r.records_per_second:,.0f} | {r.peak_memory_bytes / 2**20:.1f} |"
            for r in results
        ),
    ]
    table = "\n".join(rows)
    return f"""## Coupling lookups (Table Storage)

A sync page resolves its records' couplings in bulk before deciding anything.
{RECORDS:,} coupled records on Azurite; requests counted at the client, peak memory is the Python
heap peak during the step (tracemalloc).

{table}
"""
