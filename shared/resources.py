"""Names of the Azure resources the connector's code uses: Service Bus queues and storage tables.

The Bicep in ``infra/`` creates exactly these, and a test keeps the two in step.
"""

from __future__ import annotations

from typing import Final

# Service Bus queues
QUEUE_SALES_ORDERS: Final = "sales-orders"  # Sales order conversion requests (push, poll, manual)
QUEUE_QUOTES: Final = "quotes"  # quote processing requests (push, poll, manual)
QUEUE_COUPLING: Final = "coupling"  # couple, match-based coupling, create-and-couple
QUEUE_FULL_SYNC: Final = "full-sync"  # full synchronization steps
QUEUE_RECORD_SYNC: Final = "record-sync"  # per-record sync requests (webhooks, Dataverse push)
QUEUE_DATAVERSE_EVENTS: Final = "dataverse-events"  # RemoteExecutionContexts of mapped tables' changes

QUEUES: Final = (
    QUEUE_SALES_ORDERS,
    QUEUE_QUOTES,
    QUEUE_COUPLING,
    QUEUE_FULL_SYNC,
    QUEUE_RECORD_SYNC,
    QUEUE_DATAVERSE_EVENTS,
)

# Table Storage tables
TABLE_COUPLINGS: Final = "Couplings"
TABLE_SYNC_JOBS: Final = "SyncJobs"
TABLE_SYNC_ERRORS: Final = "SyncErrors"
TABLE_WATERMARKS: Final = "Watermarks"
TABLE_FULL_SYNC_RUNS: Final = "FullSyncRuns"
TABLE_CONVERSION_LEDGER: Final = "ConversionLedger"
TABLE_QUOTE_ARCHIVE: Final = "QuoteArchive"
TABLE_LEASES: Final = "Leases"  # who may write a mapping's records right now

TABLES: Final = (
    TABLE_COUPLINGS,
    TABLE_SYNC_JOBS,
    TABLE_SYNC_ERRORS,
    TABLE_WATERMARKS,
    TABLE_FULL_SYNC_RUNS,
    TABLE_CONVERSION_LEDGER,
    TABLE_QUOTE_ARCHIVE,
    TABLE_LEASES,
)
