"""Service Bus access from settings: a connection string locally, a managed identity in Azure."""

from __future__ import annotations

from typing import Any

from azure.servicebus import ServiceBusClient

from shared.config import ServiceBusSettings


def open_service_bus_client(settings: ServiceBusSettings, **options: Any) -> ServiceBusClient:
    """A client for the namespace (connections open lazily, on first send or receive).

    ``options`` go to the SDK client (e.g. ``retry_total``).
    """
    if settings.connection_string:
        return ServiceBusClient.from_connection_string(settings.connection_string, **options)
    from azure.identity import ManagedIdentityCredential

    assert settings.fully_qualified_namespace is not None  # guaranteed by settings validation
    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return ServiceBusClient(settings.fully_qualified_namespace, credential, **options)
