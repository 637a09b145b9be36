"""The Bicep creates what the code uses, and only that.

Read live from the code, never copied: ``shared.config.SETTINGS`` (every app setting the connector
reads) and ``shared.resources`` (``QUEUES``, ``TABLES``). Add a setting, queue or table there and
this fails until ``infra/`` creates or sets it too; remove one and it fails until ``infra/`` stops.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared import resources
from shared.config import SETTINGS

pytestmark = pytest.mark.unit

# Settings of shared.config.SETTINGS that the Function App in Azure deliberately does not get.
NOT_SET_IN_AZURE = {
    # extra CA to trust: only the local emulators' self-made CA needs it; Azure trusts public CAs
    "CONNECTOR_CA_BUNDLE",
    # connection strings with keys: local stack only; in Azure the identity-based
    # StateTablesConnection__tableServiceUri / ServiceBusConnection__fullyQualifiedNamespace are set
    "StateTablesConnection",
    "ServiceBusConnection",
}

# App settings the Bicep sets that the Functions host or platform reads, not the connector's code.
HOST_SETTINGS = {
    # host storage (leases, keys, timers) over the managed identity
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    # telemetry, sent with the managed identity (the component has local auth off)
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# A binding's identity-based connection "<name>" also takes "<name>__credential" / "<name>__clientId"
# (read by the host's extension, e.g. the Service Bus trigger); allowed for connections the code
# declares identity-based, i.e. some "<name>__..." is in SETTINGS.
_CONNECTION_IDENTITY_SUFFIXES = ("__credential", "__clientId")

# Flex Consumption takes the runtime from functionAppConfig and rejects these as app settings.
FORBIDDEN_ON_FLEX = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}

MAIN = "main.bicep"


def _module(bicep: dict[str, dict[str, Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """main.bicep's module ``name``: (its params as written in main.bicep, the module file's JSON)."""
    module = bicep[MAIN]["modules"][name]
    return module["config"]["params"], bicep[module["detail"]["path"]]


def _resources_of_type(document: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in document.get("resources", {}).values() if r["type"].lower() == resource_type.lower()]


def _literal_list(document: dict[str, Any], variable: str) -> list[str]:
    value = document["variables"][variable]["value"]
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{variable} must be a literal list"
    return value


def _created_by_loop(bicep: dict[str, dict[str, Any]], module: str, param: str, resource_type: str, var: str) -> None:
    """main.bicep passes ``var`` as the module's ``param``, which one loop turns into ``resource_type``."""
    params, document = _module(bicep, module)
    assert params[param] == var, f"module {module}: {param} must be {var}, is {params[param]!r}"
    creators = _resources_of_type(document, resource_type)
    assert len(creators) == 1, f"exactly one {resource_type} resource expected in module {module}"
    loop = creators[0]["config"].get("loop_type") or {}
    assert loop.get("detail", {}).get("array_name") == param, f"{resource_type} must be created for each {param}"
    assert creators[0]["config"]["config"]["name"] == loop["detail"]["item_name"], "named after the loop item"


def test_bicep_creates_exactly_the_queues_the_code_uses(bicep: dict[str, dict[str, Any]]) -> None:
    queues = _literal_list(bicep[MAIN], "serviceBusQueues")
    assert len(queues) == len(set(queues)), f"duplicate queues: {queues}"
    assert set(queues) == set(resources.QUEUES), (
        f"missing in infra: {sorted(set(resources.QUEUES) - set(queues))}; "
        f"unused by the code: {sorted(set(queues) - set(resources.QUEUES))}"
    )
    _created_by_loop(bicep, "serviceBus", "queueNames", "Microsoft.ServiceBus/namespaces/queues", "serviceBusQueues")


def test_queue_settings_dead_letter_and_bound_deliveries(bicep: dict[str, dict[str, Any]]) -> None:
    _, document = _module(bicep, "serviceBus")
    (queue,) = _resources_of_type(document, "Microsoft.ServiceBus/namespaces/queues")
    properties = queue["config"]["config"]["properties"]
    assert properties["deadLetteringOnMessageExpiration"] is True
    assert {"maxDeliveryCount", "lockDuration", "defaultMessageTimeToLive"} <= properties.keys()


def test_dataverse_send_rules_are_on_the_push_queues_only(bicep: dict[str, dict[str, Any]]) -> None:
    pushed = _literal_list(bicep[MAIN], "dataverseEndpointQueues")
    assert set(pushed) == {resources.QUEUE_SALES_ORDERS, resources.QUEUE_QUOTES, resources.QUEUE_DATAVERSE_EVENTS}
    params, document = _module(bicep, "serviceBus")
    assert params["dataverseEndpointQueues"] == "dataverseEndpointQueues"
    (rule,) = _resources_of_type(document, "Microsoft.ServiceBus/namespaces/queues/authorizationRules")
    assert rule["config"]["loop_type"]["detail"]["array_name"] == "dataverseEndpointQueues"
    assert rule["config"]["config"]["properties"]["rights"] == ["Send"], "send-only"
    assert not _resources_of_type(document, "Microsoft.ServiceBus/namespaces/authorizationRules"), (
        "no namespace-wide shared access rule"
    )


def test_bicep_creates_exactly_the_tables_the_code_uses(bicep: dict[str, dict[str, Any]]) -> None:
    tables = _literal_list(bicep[MAIN], "stateTables")
    assert len(tables) == len(set(tables)), f"duplicate tables: {tables}"
    assert set(tables) == set(resources.TABLES), (
        f"missing in infra: {sorted(set(resources.TABLES) - set(tables))}; "
        f"unused by the code: {sorted(set(tables) - set(resources.TABLES))}"
    )
    _created_by_loop(
        bicep, "storage", "tableNames", "Microsoft.Storage/storageAccounts/tableServices/tables", "stateTables"
    )


def _app_settings(bicep: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(connector settings from main.bicep, host settings from the function app module), as set."""
    params, document = _module(bicep, "functionApp")
    assert params["appSettings"] == "connectorSettings", "main.bicep must pass connectorSettings as appSettings"
    connector = bicep[MAIN]["variables"]["connectorSettings"]["value"]
    host = document["variables"]["hostSettings"]["value"]
    (site,) = _resources_of_type(document, "Microsoft.Web/sites")
    app_settings = site["config"]["properties"]["siteConfig"]["appSettings"]
    source = app_settings["loop_type"]["detail"].get("object_name", "")
    assert "union" in source and "appSettings" in source and "hostSettings" in source, (
        f"siteConfig.appSettings must be built from union(appSettings, hostSettings), is {source}"
    )
    assert not _resources_of_type(document, "Microsoft.Web/sites/config"), "app settings are set in one place"
    return connector, host


def test_every_setting_the_code_reads_is_set_in_azure(bicep: dict[str, dict[str, Any]]) -> None:
    connector, _ = _app_settings(bicep)
    stale = NOT_SET_IN_AZURE - SETTINGS.keys()
    assert not stale, f"stale NOT_SET_IN_AZURE entries: {sorted(stale)}"
    missing = SETTINGS.keys() - connector.keys() - NOT_SET_IN_AZURE
    assert not missing, f"settings the code reads that infra/main.bicep does not set: {sorted(missing)}"
    set_anyway = connector.keys() & NOT_SET_IN_AZURE
    assert not set_anyway, f"settings allow-listed as not set in Azure, yet set: {sorted(set_anyway)}"


def test_no_app_setting_is_unused(bicep: dict[str, dict[str, Any]]) -> None:
    connector, host = _app_settings(bicep)
    unused = connector.keys() - SETTINGS.keys()
    assert not unused, f"connectorSettings the code never reads (shared/config.py SETTINGS): {sorted(unused)}"
    assert not connector.keys() & host.keys(), "a setting is set twice"
    identity_connections = {name.split("__", 1)[0] for name in SETTINGS if "__" in name}
    allowed = HOST_SETTINGS | {c + s for c in identity_connections for s in _CONNECTION_IDENTITY_SUFFIXES}
    unknown = host.keys() - allowed
    assert not unknown, f"host settings neither the host nor the code reads: {sorted(unknown)}"
    assert host.keys() >= HOST_SETTINGS, f"stale HOST_SETTINGS entries: {sorted(HOST_SETTINGS - host.keys())}"
    forbidden = (connector.keys() | host.keys()) & FORBIDDEN_ON_FLEX
    assert not forbidden, f"Flex Consumption rejects these app settings: {sorted(forbidden)}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_secrets_are_key_vault_references_and_no_key_is_set(bicep: dict[str, dict[str, Any]]) -> None:
    connector, host = _app_settings(bicep)
    for name in SETTINGS.keys() & connector.keys():
        if "SECRET" in name:
            references = [s for s in _strings(connector[name]) if s.startswith("@Microsoft.KeyVault(")]
            assert references, f"{name} must be a Key Vault reference, is {connector[name]!r}"
    everything = _strings(connector) + _strings(host)
    for marker in ("AccountKey=", "SharedAccessKey=", "listKeys"):
        assert not [s for s in everything if marker in s], f"a key ({marker}) in app settings"
