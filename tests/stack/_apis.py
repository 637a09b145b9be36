"""The connector's own API adapters, built from a stack's settings the way the connector builds them,
for tests that read or change either side directly (a plain module, not a plugin)."""

from __future__ import annotations

from shared.adapters.auth import MsalTokenProvider
from shared.adapters.business_central import BusinessCentralAdapter, BusinessCentralApi
from shared.adapters.dataverse import DataverseAdapter, DataverseWebApi
from shared.adapters.http_session import ApiSession
from shared.config import Settings


def dataverse_adapter(settings: Settings) -> DataverseAdapter:
    """The Dataverse port, as the connector's application user."""
    session = ApiSession(settings.ca_bundle)
    assert settings.dataverse.credential is not None
    tokens = MsalTokenProvider("Dataverse", settings.dataverse.credential, settings.dataverse.scope, session)
    return DataverseAdapter(DataverseWebApi(settings.dataverse.api_url, tokens, session))


def business_central_api(settings: Settings) -> BusinessCentralApi:
    """The BC API client, as the connector's app."""
    session = ApiSession(settings.ca_bundle)
    bc_settings = settings.business_central
    assert bc_settings.credential is not None
    tokens = MsalTokenProvider("Business Central", bc_settings.credential, bc_settings.scope, session)
    return BusinessCentralApi(bc_settings.api_url, tokens, session)


def business_central_adapter(settings: Settings) -> BusinessCentralAdapter:
    """The BC port for the configured company."""
    return BusinessCentralAdapter(business_central_api(settings), settings.business_central.company_id)
