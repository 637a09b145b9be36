"""Durable state in Azure Table Storage (Azurite locally): couplings, jobs, errors, watermarks."""

from shared.adapters.tables._service import TableState, open_table_state, table_service_client
from shared.adapters.tables.couplings import TableCouplingStore
from shared.adapters.tables.full_sync_runs import TableFullSyncStore
from shared.adapters.tables.leases import TableLeaseStore
from shared.adapters.tables.sync_errors import TableSyncErrorStore
from shared.adapters.tables.sync_jobs import TableSyncJobStore
from shared.adapters.tables.watermarks import TableWatermarkStore

__all__ = [
    "TableCouplingStore",
    "TableFullSyncStore",
    "TableLeaseStore",
    "TableState",
    "TableSyncErrorStore",
    "TableSyncJobStore",
    "TableWatermarkStore",
    "open_table_state",
    "table_service_client",
]
