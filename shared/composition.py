"""The composition root: the only place that chooses and builds real adapters.

Everything is built lazily on first use and kept for the life of the worker process, so
connections and token caches are reused across invocations and nothing connects at import.
"""

from __future__ import annotations

from functools import lru_cache

from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient

from shared.adapters.auth import ManagedIdentityTokenProvider, MsalTokenProvider, TokenProvider
from shared.adapters.business_central import BusinessCentralApi
from shared.adapters.clock import SystemClock
from shared.adapters.dataverse import DataverseWebApi
from shared.adapters.http_session import ApiSession
from shared.adapters.probes import BusinessCentralProbe, DataverseProbe, ServiceBusProbe, TableStorageProbe
from shared.adapters.servicebus import open_service_bus_client
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
from shared.ports import Clock, CouplingStore, HealthProbe, SyncErrorStore, SyncJobStore, WatermarkStore
from shared.resources import (
    QUEUE_SALES_ORDERS,
    TABLE_COUPLINGS,
    TABLE_SYNC_ERRORS,
    TABLE_SYNC_JOBS,
    TABLE_WATERMARKS,
)


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
def business_central_api() -> BusinessCentralApi:
    """The BC API v2.0 client."""
    bc = settings().business_central
    return BusinessCentralApi(bc.api_url, _tokens("Business Central", bc.credential, bc.scope), _api_session())


def health_probes() -> list[HealthProbe]:
    """One probe per dependency, in the order the health answer lists them."""
    return [
        TableStorageProbe(table_service()),
        ServiceBusProbe(_service_bus_probe_client(), QUEUE_SALES_ORDERS),
        DataverseProbe(dataverse_api()),
        BusinessCentralProbe(business_central_api(), settings().business_central.company_id),
    ]
