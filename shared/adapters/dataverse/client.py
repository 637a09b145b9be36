"""Dataverse Web API v9.2 client."""

from __future__ import annotations

import requests

from shared.adapters._api_client import ApiClient
from shared.adapters.auth import TokenProvider
from shared.adapters.dataverse.errors import dataverse_error


class DataverseWebApi(ApiClient):
    """Requests to one Dataverse environment's Web API."""

    def __init__(self, api_url: str, tokens: TokenProvider, session: requests.Session) -> None:
        super().__init__(
            "Dataverse",
            api_url,
            tokens,
            session,
            map_error=dataverse_error,
            headers={"OData-MaxVersion": "4.0", "OData-Version": "4.0"},
        )

    def ping(self) -> None:
        """Prove the API answers for this identity, as cheaply as the API allows."""
        self.get_json(
            "transactioncurrencies", params={"$select": "isocurrencycode", "$top": "1"}, doing="checking the connection"
        )
