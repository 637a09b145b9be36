"""Business Central API v2.0 client."""

from __future__ import annotations

import requests

from shared.adapters._api_client import ApiClient
from shared.adapters.auth import TokenProvider
from shared.adapters.business_central.errors import business_central_error


class BusinessCentralApi(ApiClient):
    """Requests to one BC environment's API v2.0."""

    def __init__(self, api_url: str, tokens: TokenProvider, session: requests.Session) -> None:
        super().__init__("Business Central", api_url, tokens, session, map_error=business_central_error)

    def ping(self, company_id: str) -> None:
        """Prove the API answers for this identity and that the company exists."""
        self.get_json(f"companies({company_id})", params={"$select": "id,name"}, doing="checking the connection")
