"""Settings: read once from the environment (and ``local.settings.json`` locally) into frozen objects.

Every setting the connector reads is declared in ``SETTINGS`` with what it is for; a missing or
invalid one fails at start with a message naming it. ``local.settings.example.json`` documents
each one and a test keeps the two in step. Secrets are excluded from ``repr`` so they never reach
a log line through a settings object.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

from shared.errors import ConfigurationError

__all__ = [
    "SETTINGS",
    "BusinessCentralSettings",
    "ClientCredential",
    "DataverseSettings",
    "FullSyncSettings",
    "PushSettings",
    "SalesDocumentSettings",
    "ServiceBusSettings",
    "Settings",
    "TableStorageSettings",
    "get_settings",
    "load_settings",
]

# name → what it is for. Optional ones say "(optional)".
SETTINGS: Final[dict[str, str]] = {
    "CONNECTOR_AUTH_MODE": "(optional) client_secret (default) | client_certificate | managed_identity: how the "
    "connector authenticates to Dataverse and Business Central",
    "DATAVERSE_URL": "Dataverse environment URL, e.g. https://contoso.crm4.dynamics.com",
    "DATAVERSE_AUTHORITY": "Microsoft Entra authority, https://login.microsoftonline.com/<tenant id>",
    "DATAVERSE_CLIENT_ID": "application (client) id registered as a Dataverse application user",
    "DATAVERSE_CLIENT_SECRET": "(optional) client secret, for client_secret mode; a Key Vault reference in Azure",
    "DATAVERSE_CLIENT_CERTIFICATE_PATH": "(optional) PEM with private key and certificate, client_certificate mode",
    "BC_API_URL": "Business Central API root, https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0",
    "BC_COMPANY_ID": "id (GUID) of the Business Central company this deployment serves",
    "BC_SCOPE": "(optional) token scope for the BC API, default https://api.businesscentral.dynamics.com/.default",
    "BC_AUTHORITY": "Microsoft Entra authority for the BC API (usually the same as DATAVERSE_AUTHORITY)",
    "BC_CLIENT_ID": "application (client) id registered in BC's Microsoft Entra Applications",
    "BC_CLIENT_SECRET": "(optional) client secret for the BC API, client_secret mode",
    "BC_CLIENT_CERTIFICATE_PATH": "(optional) PEM with private key and certificate for the BC API",
    "CONNECTOR_CA_BUNDLE": "(optional) extra CA bundle to trust for Dataverse and BC (the local emulators' CA)",
    "StateTablesConnection": "(optional) Table Storage connection string for state (local); or set "
    "StateTablesConnection__tableServiceUri",
    "StateTablesConnection__tableServiceUri": "(optional) Table Storage endpoint, used with a managed identity",
    "ServiceBusConnection": "(optional) Service Bus connection string (local); or set "
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection__fullyQualifiedNamespace": "(optional) Service Bus namespace host, with a managed identity",
    "AZURE_CLIENT_ID": "(optional) client id of the user-assigned managed identity for Azure resources",
    "MAPPING_OVERRIDES": "(optional) JSON that changes the default integration table mappings (docs/mappings.md)",
    "FULL_SYNC_STEP_SECONDS": "(optional) how long one full-synchronization message works on a mapping before it "
    "saves its place and queues the next one, default 240 (keep well below the function timeout; 0: one page each)",
    "FULL_SYNC_PAGE_SIZE": "(optional) records per page a full synchronization reads, default each API's maximum "
    "(20,000 BC, 5,000 Dataverse); smaller pages bound memory and the length of a step",
    "SCHEDULE_MAPPING_SYNC": "NCRONTAB (6 fields) of the scheduled incremental sync of all mappings: 0 */5 * * * *",
    "SCHEDULE_POSTED_INVOICES": "(optional) NCRONTAB (6 fields) of the posted sales invoice job (BC invoices of "
    "coupled customers into Sales), default 0 */30 * * * *",
    "SCHEDULE_PAYMENT_STATUS": "(optional) NCRONTAB (6 fields) of the invoice payment status job, "
    "default 0 */30 * * * *",
    "SCHEDULE_ACCOUNT_STATISTICS": "(optional) NCRONTAB (6 fields) of the account statistics job, "
    "default 0 */30 * * * *",
    "SCHEDULE_ORDER_FOLLOWUP": "(optional) NCRONTAB (6 fields) of the order follow-up (BC order status, shipments "
    "and invoices back to the coupled Sales orders), default 0 */7 * * * * as the built-in's Order Status job",
    "WEBHOOK_NOTIFICATION_URL": "(optional) public URL of this app's POST /api/webhooks/bc, where BC sends "
    "notifications (https; http only on 127.0.0.1/localhost). Needed by POST /api/setup/push",
    "WEBHOOK_CLIENT_STATE": "(optional) secret of 16-2048 characters BC echoes in every webhook notification "
    "(clientState); a Key Vault reference in Azure. Needed by POST /api/setup/push and the webhook",
    "DATAVERSE_SERVICEBUS_CONNECTION": "(optional) Service Bus connection string (send rights on the "
    "dataverse-events queue) Dataverse's service endpoint posts with; a Key Vault reference in Azure",
    "SCHEDULE_WEBHOOK_RENEWAL": "(optional) NCRONTAB (6 fields) of the BC webhook subscription renewal, "
    "default 0 0 */12 * * *",
    "AUTO_CREATE_SALES_ORDERS": "(optional) true: submitted Sales orders become BC orders automatically (Dataverse "
    "push to the sales-orders queue, and the poll); default false (only POST /api/salesorders/{id}/create-in-bc)",
    "AUTO_PROCESS_SALES_QUOTES": "(optional) true: activated and won Sales quotes are processed in BC automatically "
    "(push to the quotes queue, and the poll); default false (only POST /api/quotes/{id}/process-in-bc)",
    "SCHEDULE_SALES_ORDER_POLL": "(optional) NCRONTAB (6 fields) of the safety-net poll for submitted Sales orders, "
    "default 0 */5 * * * *",
    "SCHEDULE_SALES_QUOTE_POLL": "(optional) NCRONTAB (6 fields) of the safety-net poll for activated Sales quotes, "
    "default 0 */5 * * * *",
    "WRITE_IN_PRODUCT_TYPE": "(optional) type of the BC record receiving write-in product lines: Item (default); "
    "Resource is not available in BC API v2.0",
    "WRITE_IN_PRODUCT_NO": "(optional) number of the BC item receiving Sales write-in product lines (not coupled)",
    "FREIGHT_GL_ACCOUNT_NO": "(optional) G/L account number of the Account line that carries a Sales order's freight",
    "DATAVERSE_SERVICEBUS_CONNECTION_SALES_ORDERS": "(optional) Service Bus connection string (send rights on the "
    "sales-orders queue) for Dataverse's order push; default DATAVERSE_SERVICEBUS_CONNECTION; a Key Vault reference",
    "DATAVERSE_SERVICEBUS_CONNECTION_QUOTES": "(optional) Service Bus connection string (send rights on the quotes "
    "queue) for Dataverse's quote push; default DATAVERSE_SERVICEBUS_CONNECTION; a Key Vault reference",
}

_DEFAULT_WEBHOOK_RENEWAL: Final = "0 0 */12 * * *"
# Posted invoices, payment status, account statistics: every 30 minutes, as the built-in's job queue entries.
BC_TO_SALES_SCHEDULES: Final = ("SCHEDULE_POSTED_INVOICES", "SCHEDULE_PAYMENT_STATUS", "SCHEDULE_ACCOUNT_STATISTICS")
# Read by the follow-up timer through %NAME% only; checked for shape like the others.
OTHER_SCHEDULES: Final = ("SCHEDULE_ORDER_FOLLOWUP",)
_DEFAULT_DOCUMENT_POLL: Final = "0 */5 * * * *"
_CLIENT_STATE_LENGTH: Final = (16, 2048)  # our floor for a guessable-by-nobody secret; BC's ceiling
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")  # where a plain-http webhook URL may point

_BC_DEFAULT_SCOPE: Final = "https://api.businesscentral.dynamics.com/.default"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_AUTH_MODES: Final = ("client_secret", "client_certificate", "managed_identity")


@dataclass(frozen=True)
class ClientCredential:
    """An Entra application credential for one API (secret or certificate)."""

    authority: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: str | None = None


@dataclass(frozen=True)
class DataverseSettings:
    """Where and as whom to reach the Dataverse Web API."""

    url: str
    credential: ClientCredential | None  # None in managed_identity mode

    @property
    def api_url(self) -> str:
        """The Web API root."""
        return f"{self.url}/api/data/v9.2"

    @property
    def scope(self) -> str:
        """The token scope: the environment URL's ``.default``."""
        return f"{self.url}/.default"


@dataclass(frozen=True)
class BusinessCentralSettings:
    """Where and as whom to reach the BC API v2.0, and for which company."""

    api_url: str
    company_id: str
    scope: str
    credential: ClientCredential | None

    @property
    def company_url(self) -> str:
        """The company-scoped API root."""
        return f"{self.api_url}/companies({self.company_id})"


@dataclass(frozen=True)
class TableStorageSettings:
    """The state tables' account: a connection string, or an endpoint plus managed identity."""

    connection_string: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class ServiceBusSettings:
    """The Service Bus namespace: a connection string, or a namespace plus managed identity."""

    connection_string: str | None = field(default=None, repr=False)
    fully_qualified_namespace: str | None = None
    managed_identity_client_id: str | None = None


@dataclass(frozen=True)
class PushSettings:
    """Near-real-time push: BC webhooks and Dataverse's service endpoint (all optional)."""

    notification_url: str | None = None
    client_state: str | None = field(default=None, repr=False)
    dataverse_service_bus_connection: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FullSyncSettings:
    """How a full synchronization cuts its work into queue messages (docs/full-sync.md)."""

    step_seconds: int = 240
    page_size: int | None = None  # None: each API's maximum


@dataclass(frozen=True)
class SalesDocumentSettings:
    """Sales orders and quotes to BC (docs/orders-and-quotes.md)."""

    auto_create_orders: bool = False
    auto_process_quotes: bool = False
    schedule_order_poll: str = _DEFAULT_DOCUMENT_POLL
    schedule_quote_poll: str = _DEFAULT_DOCUMENT_POLL
    write_in_item: str | None = None
    freight_account: str | None = None
    orders_push_connection: str | None = field(default=None, repr=False)
    quotes_push_connection: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the connector is configured with."""

    auth_mode: str
    dataverse: DataverseSettings
    business_central: BusinessCentralSettings
    tables: TableStorageSettings
    service_bus: ServiceBusSettings
    ca_bundle: str | None = None
    mapping_overrides: str | None = None
    schedule_mapping_sync: str = "0 */5 * * * *"
    push: PushSettings = field(default_factory=PushSettings)
    schedule_webhook_renewal: str = _DEFAULT_WEBHOOK_RENEWAL
    documents: SalesDocumentSettings = field(default_factory=SalesDocumentSettings)
    full_sync: FullSyncSettings = field(default_factory=FullSyncSettings)


class _Reader:
    """Collects every problem so one start-up failure names all bad settings at once."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.problems: list[str] = []

    def optional(self, name: str) -> str | None:
        assert name in SETTINGS, f"undeclared setting {name}"
        value = self.values.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            self.problems.append(f"{name} is missing ({SETTINGS[name]})")
            return ""
        return value

    def https_url(self, name: str, *, required: bool = True) -> str | None:
        value = self.required(name) if required else self.optional(name)
        if not value:
            return None
        parsed = urlparse(value)
        if parsed.scheme != "https" or not parsed.netloc:
            self.problems.append(f"{name} must be an https:// URL, got {value!r}")
        return value.rstrip("/")


def _credential(reader: _Reader, prefix: str, auth_mode: str) -> ClientCredential | None:
    if auth_mode == "managed_identity":
        return None
    authority = reader.https_url(f"{prefix}_AUTHORITY") or ""
    client_id = reader.required(f"{prefix}_CLIENT_ID")
    secret = reader.optional(f"{prefix}_CLIENT_SECRET")
    certificate = reader.optional(f"{prefix}_CLIENT_CERTIFICATE_PATH")
    if auth_mode == "client_secret" and not secret:
        reader.problems.append(f"{prefix}_CLIENT_SECRET is missing (CONNECTOR_AUTH_MODE is client_secret)")
    if auth_mode == "client_certificate":
        if not certificate:
            reader.problems.append(
                f"{prefix}_CLIENT_CERTIFICATE_PATH is missing (CONNECTOR_AUTH_MODE is client_certificate)"
            )
        elif not Path(certificate).is_file():
            reader.problems.append(f"{prefix}_CLIENT_CERTIFICATE_PATH names no file: {certificate}")
    return ClientCredential(
        authority=authority, client_id=client_id, client_secret=secret, certificate_path=certificate
    )


def _secret(reader: _Reader, name: str) -> str | None:
    value = reader.optional(name)
    # App Service leaves a Key Vault reference it cannot resolve (secret not set yet) as its own
    # text: that is no secret, and push stays off until the vault has one.
    if value is not None and value.startswith("@Microsoft.KeyVault("):
        return None
    return value


def _push_settings(reader: _Reader) -> PushSettings:
    url = reader.optional("WEBHOOK_NOTIFICATION_URL")
    if url:
        parsed = urlparse(url)
        local = parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS
        if not parsed.netloc or not (parsed.scheme == "https" or local):
            reader.problems.append(
                f"WEBHOOK_NOTIFICATION_URL must be an https:// URL (http:// only on 127.0.0.1), got {url!r}"
            )
    client_state = _secret(reader, "WEBHOOK_CLIENT_STATE")
    low, high = _CLIENT_STATE_LENGTH
    if client_state is not None and not low <= len(client_state) <= high:
        # The value is a secret: its length is all the message may say.
        reader.problems.append(f"WEBHOOK_CLIENT_STATE must have {low} to {high} characters, has {len(client_state)}")
    connection = _secret(reader, "DATAVERSE_SERVICEBUS_CONNECTION")
    if connection is not None and not all(
        part in connection.lower() for part in ("endpoint=", "sharedaccesskeyname=", "sharedaccesskey=")
    ):
        reader.problems.append(
            "DATAVERSE_SERVICEBUS_CONNECTION must be a Service Bus connection string with "
            "Endpoint, SharedAccessKeyName and SharedAccessKey"
        )
    return PushSettings(notification_url=url, client_state=client_state, dataverse_service_bus_connection=connection)


def _flag(reader: _Reader, name: str) -> bool:
    value = (reader.optional(name) or "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        reader.problems.append(f"{name} must be true or false, got {value!r}")
    return value in ("true", "1", "yes")


def _whole_number(reader: _Reader, name: str, *, minimum: int, maximum: int) -> int | None:
    value = reader.optional(name)
    if value is None:
        return None
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        reader.problems.append(f"{name} must be a whole number from {minimum} to {maximum:,}, got {value!r}")
        return None
    return int(value)


def _full_sync_settings(reader: _Reader) -> FullSyncSettings:
    step = _whole_number(reader, "FULL_SYNC_STEP_SECONDS", minimum=0, maximum=3_600)
    return FullSyncSettings(
        step_seconds=step if step is not None else FullSyncSettings.step_seconds,
        page_size=_whole_number(reader, "FULL_SYNC_PAGE_SIZE", minimum=1, maximum=20_000),
    )


def _document_settings(reader: _Reader) -> SalesDocumentSettings:
    schedules = []
    for name in ("SCHEDULE_SALES_ORDER_POLL", "SCHEDULE_SALES_QUOTE_POLL"):
        schedule = reader.optional(name) or _DEFAULT_DOCUMENT_POLL
        if len(schedule.split()) != 6:
            reader.problems.append(f"{name} must be a 6-field NCRONTAB expression, got {schedule!r}")
        schedules.append(schedule)
    write_in_type = reader.optional("WRITE_IN_PRODUCT_TYPE") or "Item"
    if write_in_type.lower() != "item":
        reader.problems.append(
            f"WRITE_IN_PRODUCT_TYPE must be Item, got {write_in_type!r} (BC API v2.0 has no resources)"
        )
    return SalesDocumentSettings(
        auto_create_orders=_flag(reader, "AUTO_CREATE_SALES_ORDERS"),
        auto_process_quotes=_flag(reader, "AUTO_PROCESS_SALES_QUOTES"),
        schedule_order_poll=schedules[0],
        schedule_quote_poll=schedules[1],
        write_in_item=reader.optional("WRITE_IN_PRODUCT_NO"),
        freight_account=reader.optional("FREIGHT_GL_ACCOUNT_NO"),
        orders_push_connection=_secret(reader, "DATAVERSE_SERVICEBUS_CONNECTION_SALES_ORDERS"),
        quotes_push_connection=_secret(reader, "DATAVERSE_SERVICEBUS_CONNECTION_QUOTES"),
    )


def load_settings(values: Mapping[str, str]) -> Settings:
    """Validate ``values`` (environment-like) into ``Settings``.

    Raises:
        ConfigurationError: naming every missing or invalid setting.
    """
    reader = _Reader(values)
    auth_mode = reader.optional("CONNECTOR_AUTH_MODE") or "client_secret"
    if auth_mode not in _AUTH_MODES:
        reader.problems.append(f"CONNECTOR_AUTH_MODE must be one of {', '.join(_AUTH_MODES)}, got {auth_mode!r}")

    dataverse = DataverseSettings(
        url=reader.https_url("DATAVERSE_URL") or "", credential=_credential(reader, "DATAVERSE", auth_mode)
    )
    company_id = reader.required("BC_COMPANY_ID")
    if company_id and not _GUID.match(company_id):
        reader.problems.append(f"BC_COMPANY_ID must be a GUID, got {company_id!r}")
    business_central = BusinessCentralSettings(
        api_url=reader.https_url("BC_API_URL") or "",
        company_id=company_id.lower(),
        scope=reader.optional("BC_SCOPE") or _BC_DEFAULT_SCOPE,
        credential=_credential(reader, "BC", auth_mode),
    )

    identity = reader.optional("AZURE_CLIENT_ID")
    tables = TableStorageSettings(
        connection_string=reader.optional("StateTablesConnection"),
        endpoint=reader.https_url("StateTablesConnection__tableServiceUri", required=False),
        managed_identity_client_id=identity,
    )
    if not tables.connection_string and not tables.endpoint:
        reader.problems.append("StateTablesConnection or StateTablesConnection__tableServiceUri must be set")
    service_bus = ServiceBusSettings(
        connection_string=reader.optional("ServiceBusConnection"),
        fully_qualified_namespace=reader.optional("ServiceBusConnection__fullyQualifiedNamespace"),
        managed_identity_client_id=identity,
    )
    if not service_bus.connection_string and not service_bus.fully_qualified_namespace:
        reader.problems.append("ServiceBusConnection or ServiceBusConnection__fullyQualifiedNamespace must be set")

    ca_bundle = reader.optional("CONNECTOR_CA_BUNDLE")
    if ca_bundle and not Path(ca_bundle).is_file():
        reader.problems.append(f"CONNECTOR_CA_BUNDLE names no file: {ca_bundle}")

    schedule = reader.required("SCHEDULE_MAPPING_SYNC")
    if schedule and len(schedule.split()) != 6:
        reader.problems.append(f"SCHEDULE_MAPPING_SYNC must be a 6-field NCRONTAB expression, got {schedule!r}")
    for name in (*BC_TO_SALES_SCHEDULES, *OTHER_SCHEDULES):
        # The timers read these through %NAME%; a value here only has to be well formed.
        value = reader.optional(name)
        if value is not None and len(value.split()) != 6:
            reader.problems.append(f"{name} must be a 6-field NCRONTAB expression, got {value!r}")

    push = _push_settings(reader)
    documents = _document_settings(reader)
    full_sync = _full_sync_settings(reader)
    renewal = reader.optional("SCHEDULE_WEBHOOK_RENEWAL") or _DEFAULT_WEBHOOK_RENEWAL
    if len(renewal.split()) != 6:
        reader.problems.append(f"SCHEDULE_WEBHOOK_RENEWAL must be a 6-field NCRONTAB expression, got {renewal!r}")

    if reader.problems:
        raise ConfigurationError("invalid settings: " + "; ".join(reader.problems), code="InvalidSettings")
    return Settings(
        auth_mode=auth_mode,
        dataverse=dataverse,
        business_central=business_central,
        tables=tables,
        service_bus=service_bus,
        ca_bundle=ca_bundle,
        mapping_overrides=reader.optional("MAPPING_OVERRIDES"),
        schedule_mapping_sync=schedule,
        push=push,
        schedule_webhook_renewal=renewal,
        documents=documents,
        full_sync=full_sync,
    )


def _local_settings_values(path: Path) -> dict[str, str]:
    # Core Tools puts "Values" into the environment; outside a host (CLIs, scripts) we read the
    # same file so both paths see the same settings.
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ConfigurationError(f"{path} is not valid JSON: {error}", code="InvalidSettings") from error
    values = document.get("Values", {}) if isinstance(document, dict) else {}
    return {str(k): str(v) for k, v in values.items()}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once: environment over ``local.settings.json``.

    Raises:
        ConfigurationError: a setting is missing or invalid.
    """
    path = Path(os.environ.get("CONNECTOR_LOCAL_SETTINGS", "local.settings.json"))
    return load_settings({**_local_settings_values(path), **os.environ})
