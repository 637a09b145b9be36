"""Health probes: the cheapest real round trip to each dependency."""

from __future__ import annotations

from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from azure.servicebus import ServiceBusClient
from azure.servicebus.exceptions import (
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusConnectionError,
    ServiceBusError,
)

from shared.adapters.business_central import BusinessCentralApi
from shared.adapters.dataverse import DataverseWebApi
from shared.adapters.tables._errors import table_errors
from shared.errors import ConfigurationError, RetriableError


class TableStorageProbe:
    """Lists one table: proves the endpoint answers and the identity may read."""

    name = "tables"

    def __init__(self, service: TableServiceClient) -> None:
        self._service = service

    def check(self) -> None:
        """Raise RetriableError/ConfigurationError when Table Storage does not answer."""
        with table_errors("checking Table Storage"):
            next(iter(self._service.list_tables(results_per_page=1)), None)


class ServiceBusProbe:
    """Opens (and closes) a sender on one queue: proves the namespace, the credential and the queue."""

    name = "serviceBus"

    def __init__(self, client: ServiceBusClient, queue: str) -> None:
        self._client = client
        self._queue = queue

    def check(self) -> None:
        """Raise RetriableError/ConfigurationError when Service Bus does not answer."""
        doing = f"Service Bus: opening queue {self._queue}"
        try:
            with self._client.get_queue_sender(self._queue, socket_timeout=5) as sender:
                # Opening is lazy in the SDK; a zero-message batch forces the link attach.
                sender.create_message_batch()
        except (ServiceBusAuthenticationError, ServiceBusAuthorizationError) as error:
            raise ConfigurationError(f"{doing}: the credential was refused", code="ServiceBusAuth") from error
        except ServiceBusConnectionError as error:
            raise RetriableError(f"{doing}: unreachable", code="Unreachable") from error
        except (ServiceBusError, AzureError) as error:
            raise RetriableError(f"{doing}: {type(error).__name__}: {str(error)[:200]}", code="ServiceBus") from error


class DataverseProbe:
    """A one-row read from the Dataverse Web API with a real token."""

    name = "dataverse"

    def __init__(self, api: DataverseWebApi) -> None:
        self._api = api

    def check(self) -> None:
        """Raise a category from the Dataverse error table when it does not answer."""
        self._api.ping()


class BusinessCentralProbe:
    """Reads the configured company from the BC API with a real token."""

    name = "businessCentral"

    def __init__(self, api: BusinessCentralApi, company_id: str) -> None:
        self._api = api
        self._company_id = company_id

    def check(self) -> None:
        """Raise a category from the BC error table when it does not answer or the company is unknown."""
        self._api.ping(self._company_id)
