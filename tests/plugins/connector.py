"""pytest fixtures for the connector itself: ``function_app.py`` in the local Functions host,
wired to the session's Azurite, Service Bus, Dataverse and BC emulators.

``connector_settings_for_stack`` is the app settings a local stack gives the connector (the
same function ``make run`` uses); ``connector`` is one host running with them, for the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from emulators._launch import PROJECT_ROOT, free_port
from emulators.azurite import Azurite
from emulators.stack import connector_settings
from tests.plugins.functions_host import FunctionsHostHandle, start_functions_host


@pytest.fixture(scope="session")
def connector_settings_for_stack(
    tmp_path_factory: pytest.TempPathFactory,
    azurite: Azurite,
    servicebus_emulator: Any,
    dataverse_emulator: Any,
    business_central_emulator: Any,
) -> dict[str, str]:
    """App settings pointing the connector at this session's local stack."""
    ca_bundle = tmp_path_factory.mktemp("connector") / "ca-bundle.pem"
    ca_bundle.write_text(
        "".join(Path(e.start_line["ca_bundle"]).read_text() for e in (dataverse_emulator, business_central_emulator))
    )
    return connector_settings(
        tables=azurite.connection_string,
        servicebus=servicebus_emulator.start_line,
        dataverse=dataverse_emulator.start_line,
        business_central=business_central_emulator.start_line,
        ca_bundle=str(ca_bundle),
        host_port=free_port(),  # the session's connector listens here (BC's webhooks call it)
    )


@pytest.fixture(scope="session")
def connector(connector_settings_for_stack: dict[str, str]) -> Iterator[FunctionsHostHandle]:
    """The connector app in the local Functions host, for the whole session."""
    port = urlsplit(connector_settings_for_stack["WEBHOOK_NOTIFICATION_URL"]).port
    with start_functions_host(PROJECT_ROOT, connector_settings_for_stack, port=port) as host:
        yield host
