"""The composition root: the only place that chooses and builds real adapters.

Everything is built lazily on first use and kept for the life of the worker process, so
connections and token caches are reused across invocations and nothing connects at import.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient

from shared.adapters.auth import ManagedIdentityTokenProvider, MsalTokenProvider, TokenProvider
from shared.adapters.business_central import BusinessCentralAdapter, BusinessCentralApi
from shared.adapters.business_central.contacts import CompanyContactKey
from shared.adapters.clock import SystemClock
from shared.adapters.dataverse import DataverseAdapter, DataverseWebApi
from shared.adapters.dataverse.port import SYNC_BULK_SIZE
from shared.adapters.dataverse.push import DataversePushRegistry
from shared.adapters.http_session import ApiSession
from shared.adapters.probes import BusinessCentralProbe, DataverseProbe, ServiceBusProbe, TableStorageProbe
from shared.adapters.process_memory import limit_allocator_arenas, release_freed_memory
from shared.adapters.servicebus import ServiceBusQueue, open_service_bus_client
from shared.adapters.tables import (
    TableCouplingStore,
    TableState,
    TableSyncErrorStore,
    TableSyncJobStore,
    TableWatermarkStore,
    open_table_state,
    table_service_client,
)
from shared.config import ClientCredential, Settings, get_settings
from shared.domain.mapping import TableMapping
from shared.errors import PermanentError
from shared.ports import (
    BusinessCentralPort,
    Clock,
    CouplingStore,
    DataversePort,
    FullSyncStore,
    HealthProbe,
    LeaseStore,
    MessageQueue,
    SyncErrorStore,
    SyncJobStore,
    WatermarkStore,
)
from shared.resources import (
    QUEUE_DATAVERSE_EVENTS,
    QUEUE_QUOTES,
    QUEUE_SALES_ORDERS,
    TABLE_COUPLINGS,
    TABLE_FULL_SYNC_RUNS,
    TABLE_LEASES,
    TABLE_SYNC_ERRORS,
    TABLE_SYNC_JOBS,
    TABLE_WATERMARKS,
)
from shared.usecases.push import PushRegistry, WebhookSubscriptions
from shared.usecases.sync_engine import SyncEngine

# As the code is loaded, before the host's and the engine's threads allocate: a thread's malloc
# arena, once made, stays for the life of the process (shared.adapters.process_memory).
limit_allocator_arenas()


def settings() -> Settings:
    """The validated settings (ConfigurationError naming every bad setting otherwise)."""
    return get_settings()


@lru_cache(maxsize=1)
def clock() -> Clock:
    """The clock."""
    return SystemClock()


@lru_cache(maxsize=1)
def table_service() -> TableServiceClient:
    """The Table Storage account client (no I/O yet)."""
    return table_service_client(settings().tables)


@lru_cache(maxsize=1)
def table_state() -> TableState:
    """The state tables, created if missing (retried on the next call if that fails)."""
    return open_table_state(table_service())


def coupling_store() -> CouplingStore:
    """Couplings."""
    return TableCouplingStore(table_state().table(TABLE_COUPLINGS))


def sync_job_store() -> SyncJobStore:
    """Sync jobs."""
    return TableSyncJobStore(table_state().table(TABLE_SYNC_JOBS), clock())


def sync_error_store() -> SyncErrorStore:
    """Sync errors."""
    return TableSyncErrorStore(table_state().table(TABLE_SYNC_ERRORS))


def watermark_store() -> WatermarkStore:
    """Watermarks."""
    return TableWatermarkStore(table_state().table(TABLE_WATERMARKS))


def lease_store() -> LeaseStore:
    """Leases on mappings' writes."""
    from shared.adapters.tables import TableLeaseStore

    return TableLeaseStore(table_state().table(TABLE_LEASES))


@lru_cache(maxsize=1)
def service_bus_client() -> ServiceBusClient:
    """The Service Bus namespace client."""
    return open_service_bus_client(settings().service_bus)


@lru_cache(maxsize=1)
def _service_bus_probe_client() -> ServiceBusClient:
    # No SDK retries: the health answer should say "unreachable" at once, not after backoff.
    return open_service_bus_client(settings().service_bus, retry_total=0)


@lru_cache(maxsize=1)
def _api_session() -> ApiSession:
    return ApiSession(settings().ca_bundle)


def _tokens(api_name: str, credential: ClientCredential | None, scope: str) -> TokenProvider:
    if credential is None:
        return ManagedIdentityTokenProvider(api_name, scope, settings().tables.managed_identity_client_id)
    return MsalTokenProvider(api_name, credential, scope, _api_session())


@lru_cache(maxsize=1)
def dataverse_api() -> DataverseWebApi:
    """The Dataverse Web API client."""
    dataverse = settings().dataverse
    return DataverseWebApi(
        dataverse.api_url, _tokens("Dataverse", dataverse.credential, dataverse.scope), _api_session()
    )


@lru_cache(maxsize=1)
def dataverse_port() -> DataversePort:
    """The Dataverse port: the Web API adapter, its metadata cache kept for the process."""
    return DataverseAdapter(dataverse_api(), bulk_size=SYNC_BULK_SIZE)


@lru_cache(maxsize=1)
def business_central_api() -> BusinessCentralApi:
    """The BC API v2.0 client."""
    bc = settings().business_central
    return BusinessCentralApi(bc.api_url, _tokens("Business Central", bc.credential, bc.scope), _api_session())


@lru_cache(maxsize=1)
def _business_central_adapter() -> BusinessCentralAdapter:
    return BusinessCentralAdapter(business_central_api(), settings().business_central.company_id)


def business_central_port() -> BusinessCentralPort:
    """The BC API v2.0 as the sync engine's port, scoped to the configured company."""
    return _business_central_adapter()


def health_probes() -> list[HealthProbe]:
    """One probe per dependency, in the order the health answer lists them."""
    return [
        TableStorageProbe(table_service()),
        ServiceBusProbe(_service_bus_probe_client(), QUEUE_SALES_ORDERS),
        DataverseProbe(dataverse_api()),
        BusinessCentralProbe(business_central_api(), settings().business_central.company_id),
    ]


@lru_cache(maxsize=1)
def message_queue() -> MessageQueue:
    """The connector's own queues."""
    return ServiceBusQueue(service_bus_client())


@lru_cache(maxsize=1)
def _mappings() -> dict[str, TableMapping]:
    from shared.mappings import registry

    return {m.name: m for m in registry.configured_mappings(settings().mapping_overrides)}


def all_mappings() -> tuple[TableMapping, ...]:
    """Every mapping, defaults with the configured overrides, in full-sync order."""
    return tuple(_mappings().values())


def mapping(name: str) -> TableMapping:
    """One mapping by name (case-insensitive). Raises PermanentError ``UnknownMapping``."""
    found = _mappings().get(name.upper())
    if found is None:
        raise PermanentError(
            f"There is no integration table mapping named {name!r}; known: {', '.join(_mappings())}.",
            code="UnknownMapping",
        )
    return found


def log_name(name: str) -> str:
    """A mapping's name, or a name the document flows log and couple under (``SALESORDER-ORDER``,
    ``POSTEDSALESINV-INV``, ``CUSTOMER STATISTICS``, …). Raises PermanentError ``UnknownMapping``."""
    from shared.domain.invoices import PAYMENT_STATUS_JOB, POSTED_INVOICE_MAPPING
    from shared.domain.sales_documents import MAPPING_SALES_ORDER, MAPPING_SALES_QUOTE
    from shared.domain.statistics import STATISTICS_JOB

    documents = (MAPPING_SALES_ORDER, MAPPING_SALES_QUOTE, POSTED_INVOICE_MAPPING, PAYMENT_STATUS_JOB, STATISTICS_JOB)
    return name.upper() if name.upper() in documents else mapping(name).name


def mapping_json(table_mapping: TableMapping) -> dict[str, Any]:
    """A mapping as the HTTP surface shows it."""
    from shared.mappings import registry

    return registry.mapping_as_json(table_mapping)


@lru_cache(maxsize=1)
def sync_engine() -> SyncEngine:
    """The sync engine over the real adapters."""
    from shared.mappings import registry, transforms

    return SyncEngine(
        bc=business_central_port(),
        dataverse=dataverse_port(),
        couplings=coupling_store(),
        jobs=sync_job_store(),
        errors=sync_error_store(),
        clock=clock(),
        transforms=transforms.TRANSFORMS,
        mappings=_mappings(),
        lookup_key=registry.lookup_key,
        base_currency_id=dataverse_port().base_currency_id,
        option_set_of=registry.option_set_of,
        derived_keys={"companyContactNumber": CompanyContactKey(_business_central_adapter())},
        after_page=release_freed_memory,
    )


def record_ports() -> dict[str, Any]:
    """What Synchronize Now needs (keyword arguments of ``records.synchronize_record``)."""
    return {
        "engine": sync_engine(),
        "bc": business_central_port(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "clock": clock(),
    }


def create_ports() -> dict[str, Any]:
    """What create-and-couple needs (keyword arguments of ``records.create_in_*``)."""
    return {
        "engine": sync_engine(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "errors": sync_error_store(),
        "leases": lease_store(),
        "clock": clock(),
    }


def synchronize_ports() -> dict[str, Any]:
    """What a scheduled or requested mapping sync needs (keyword arguments of ``synchronize_*``)."""
    return {
        "engine": sync_engine(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "watermarks": watermark_store(),
        "leases": lease_store(),
        "clock": clock(),
        "application_user_id": dataverse_port().application_user_id(),
    }


def full_sync_store() -> FullSyncStore:
    """Full synchronization runs and review lines."""
    from shared.adapters.tables import TableFullSyncStore

    return TableFullSyncStore(table_state().table(TABLE_FULL_SYNC_RUNS))


def full_sync_ports() -> dict[str, Any]:
    """What a full-sync line worker needs (keyword arguments of ``run_full_sync_line``)."""
    return {
        "engine": sync_engine(),
        "bc": business_central_port(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "runs": full_sync_store(),
        "queue": message_queue(),
        "leases": lease_store(),
        "clock": clock(),
        "settings": settings().full_sync,
    }


def coupling_ports() -> dict[str, Any]:
    """What a match-based coupling job needs (keyword arguments of ``run_match_coupling_job``)."""
    return {
        "bc": business_central_port(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "engine": sync_engine(),
        "jobs": sync_job_store(),
        "leases": lease_store(),
        "clock": clock(),
    }


@lru_cache(maxsize=1)
def push_registry() -> PushRegistry:
    """Dataverse service endpoints and steps, with the logical names of tables cached for the process."""
    return DataversePushRegistry(dataverse_api())


def webhook_subscriptions() -> WebhookSubscriptions:
    """BC's webhook subscriptions (the BC adapter beyond ``BusinessCentralPort``)."""
    return BusinessCentralAdapter(business_central_api(), settings().business_central.company_id)


def push_receive_ports() -> dict[str, Any]:
    """What a webhook POST needs (keyword arguments of ``push.receive_bc_notifications``)."""
    return {
        "client_state": settings().push.client_state,
        "mappings": all_mappings(),
        "company_id": settings().business_central.company_id,
        "queue": message_queue(),
        "jobs": sync_job_store(),
        "clock": clock(),
    }


def dataverse_event_ports() -> dict[str, Any]:
    """What a Dataverse event needs (keyword arguments of ``push.process_dataverse_event``)."""
    return {
        "mappings": all_mappings(),
        "registry": push_registry(),
        "application_user_id": dataverse_port().application_user_id(),
        "engine": sync_engine(),
        "jobs": sync_job_store(),
        "leases": lease_store(),
        "clock": clock(),
    }


def push_setup_ports() -> dict[str, Any]:
    """What push registration needs (keyword arguments of ``document_push.set_up_all_push``)."""
    push = settings().push
    documents = settings().documents
    fallback = push.dataverse_service_bus_connection
    return {
        # Orders and quotes go to their own queues, when their automatic processing is on.
        "document_connections": {
            QUEUE_SALES_ORDERS: documents.orders_push_connection or fallback,
            QUEUE_QUOTES: documents.quotes_push_connection or fallback,
        },
        "auto_create_orders": documents.auto_create_orders,
        "auto_process_quotes": documents.auto_process_quotes,
        "subscriptions": webhook_subscriptions(),
        "registry": push_registry(),
        "mappings": all_mappings(),
        "company_id": settings().business_central.company_id,
        "notification_url": push.notification_url,
        "client_state": push.client_state,
        "connection_string": push.dataverse_service_bus_connection,
        "queue": QUEUE_DATAVERSE_EVENTS,
        "clock": clock(),
    }


def webhook_renewal_ports() -> dict[str, Any]:
    """What the renewal timer needs (keyword arguments of ``push.renew_bc_subscriptions``)."""
    push = settings().push
    return {
        "subscriptions": webhook_subscriptions(),
        "mappings": all_mappings(),
        "company_id": settings().business_central.company_id,
        "notification_url": push.notification_url,
        "client_state": push.client_state,
        "clock": clock(),
    }


def document_ports() -> Any:
    """What Sales order and quote conversion needs (``shared.usecases.sales_orders.DocumentPorts``)."""
    from shared.usecases.sales_orders import DocumentPorts, DocumentSettings

    documents = settings().documents
    return DocumentPorts(
        bc=_business_central_adapter(),
        dataverse=dataverse_port(),
        couplings=coupling_store(),
        ledger=conversion_ledger(),
        errors=sync_error_store(),
        clock=clock(),
        settings=DocumentSettings(
            auto_create_orders=documents.auto_create_orders,
            auto_process_quotes=documents.auto_process_quotes,
            write_in_item=documents.write_in_item,
            freight_account=documents.freight_account,
        ),
        base_currency_id=dataverse_port().base_currency_id,
        application_user_id=dataverse_port().application_user_id,
        queue=message_queue(),
    )


def quote_archive() -> Any:
    """Archived BC quote versions (``shared.adapters.tables.conversion_ledger.TableQuoteArchive``)."""
    from shared.adapters.tables.conversion_ledger import TableQuoteArchive
    from shared.resources import TABLE_QUOTE_ARCHIVE

    return TableQuoteArchive(table_state().table(TABLE_QUOTE_ARCHIVE))


@lru_cache(maxsize=1)
def business_central_queries() -> Any:
    """BC reads beyond the sync engine's port (``shared.ports.BusinessCentralQueries``): documents with lines."""
    from shared.adapters.business_central.queries import BusinessCentralQueryAdapter

    return BusinessCentralQueryAdapter(business_central_api(), settings().business_central.company_id)


def invoice_ports() -> dict[str, Any]:
    """What posted invoices need (keyword arguments of ``shared.usecases.invoices``' use-cases)."""
    return {
        "company_id": settings().business_central.company_id,
        "queries": business_central_queries(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "errors": sync_error_store(),
        "clock": clock(),
    }


def payment_status_ports() -> dict[str, Any]:
    """What the payment status job needs (keyword arguments of ``update_payment_status``)."""
    return {
        "queries": business_central_queries(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "errors": sync_error_store(),
        "watermarks": watermark_store(),
        "clock": clock(),
    }


def statistics_ports() -> dict[str, Any]:
    """What the account statistics job needs (keyword arguments of ``update_account_statistics``)."""
    return {"bc": business_central_port(), **payment_status_ports()}


def order_followup_ports() -> dict[str, Any]:
    """What the order follow-up needs (keyword arguments of ``order_followup.follow_up_orders``)."""
    return {
        "bc": business_central_port(),
        "queries": business_central_queries(),
        "dataverse": dataverse_port(),
        "couplings": coupling_store(),
        "jobs": sync_job_store(),
        "errors": sync_error_store(),
        "ledger": conversion_ledger(),
        "clock": clock(),
    }


def connection_test_ports() -> dict[str, Any]:
    """What the connection test needs (keyword arguments of ``connection_test.run_connection_test``)."""
    from shared.adapters.business_central.diagnostics import BusinessCentralDiagnostics
    from shared.adapters.dataverse.diagnostics import DataverseDiagnostics

    current = settings()
    return {
        "dataverse": DataverseDiagnostics(dataverse_api()),
        "business_central": BusinessCentralDiagnostics(business_central_api()),
        "mappings": all_mappings(),
        "company_id": current.business_central.company_id,
        "dataverse_client_id": _client_id(current.dataverse.credential, current.tables.managed_identity_client_id),
        "bc_client_id": _client_id(current.business_central.credential, current.tables.managed_identity_client_id),
    }


def _client_id(credential: ClientCredential | None, managed_identity_client_id: str | None) -> str:
    if credential is not None:
        return credential.client_id
    return managed_identity_client_id or "(the Function App's managed identity)"


def conversion_ledger() -> Any:
    """Which Sales order or quote became which BC document (``shared.usecases.sales_orders.ConversionLedger``)."""
    from shared.adapters.tables.conversion_ledger import TableConversionLedger
    from shared.resources import TABLE_CONVERSION_LEDGER

    return TableConversionLedger(table_state().table(TABLE_CONVERSION_LEDGER))
