"""Opening the state tables from settings: a connection string locally, an identity in Azure."""

from __future__ import annotations

from dataclasses import dataclass

from azure.data.tables import TableClient, TableServiceClient

from shared.adapters.tables._errors import table_errors
from shared.config import TableStorageSettings
from shared.resources import TABLES


@dataclass(frozen=True)
class TableState:
    """The opened table service and a client per state table."""

    service: TableServiceClient
    clients: dict[str, TableClient]

    def table(self, name: str) -> TableClient:
        """The client of one of ``shared.resources.TABLES``."""
        return self.clients[name]

    def close(self) -> None:
        """Close every client's connection pool."""
        for client in self.clients.values():
            client.close()
        self.service.close()


def table_service_client(settings: TableStorageSettings) -> TableServiceClient:
    """A client for the account (no I/O until first use)."""
    if settings.connection_string:
        return TableServiceClient.from_connection_string(settings.connection_string)
    from azure.identity import ManagedIdentityCredential

    assert settings.endpoint is not None  # guaranteed by TableStorageSettings validation
    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return TableServiceClient(endpoint=settings.endpoint, credential=credential)


def open_table_state(settings: TableStorageSettings | TableServiceClient, *, create_tables: bool = True) -> TableState:
    """Connect to Table Storage and (idempotently) make sure every state table exists.

    Raises:
        ConfigurationError: the credential or its role is wrong.
        RetriableError: the service is unreachable.
    """
    service = settings if isinstance(settings, TableServiceClient) else table_service_client(settings)
    if create_tables:
        with table_errors("creating the state tables"):
            for name in TABLES:
                service.create_table_if_not_exists(name)
    return TableState(service=service, clients={name: service.get_table_client(name) for name in TABLES})
