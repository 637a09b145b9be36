"""Service Bus access from settings: a connection string locally, a managed identity in Azure."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSender
from azure.servicebus.exceptions import ServiceBusAuthenticationError, ServiceBusAuthorizationError, ServiceBusError

from shared.config import ServiceBusSettings
from shared.errors import ConfigurationError, RetriableError


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


class ServiceBusQueue:
    """``MessageQueue`` on Service Bus: one cached sender per queue, JSON bodies."""

    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._senders: dict[str, ServiceBusSender] = {}
        self._lock = threading.Lock()

    def send(self, queue: str, body: Mapping[str, Any], *, message_id: str | None = None) -> None:
        """Send one message. Raises RetriableError or ConfigurationError."""
        message = ServiceBusMessage(
            json.dumps(body, default=str), content_type="application/json", message_id=message_id
        )
        # A sender is not thread-safe; the lock also keeps one open link per queue.
        with self._lock:
            sender = self._senders.get(queue)
            if sender is None:
                sender = self._senders[queue] = self._client.get_queue_sender(queue)
            try:
                sender.send_messages(message)
            except (ServiceBusAuthenticationError, ServiceBusAuthorizationError) as error:
                raise ConfigurationError(f"Service Bus refused to send to {queue}", code="ServiceBusAuth") from error
            except ServiceBusError as error:
                self._senders.pop(queue, None)
                raise RetriableError(
                    f"Service Bus: sending to {queue} failed: {type(error).__name__}", code="ServiceBus"
                ) from error
