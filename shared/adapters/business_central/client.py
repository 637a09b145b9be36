"""Business Central API v2.0 client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from shared.adapters._api_client import ApiClient
from shared.adapters._api_errors import transport_error
from shared.adapters.auth import TokenProvider
from shared.adapters.business_central.errors import business_central_error
from shared.errors import PermanentError

# Long enough for a 100-operation $batch on a busy tenant, well under BC's 8-minute operation limit.
_SINGLE_ATTEMPT_TIMEOUT_SECONDS = 120.0


class BusinessCentralApi(ApiClient):
    """Requests to one BC environment's API v2.0."""

    def __init__(self, api_url: str, tokens: TokenProvider, session: requests.Session) -> None:
        super().__init__("Business Central", api_url, tokens, session, map_error=business_central_error)
        origin = urlsplit(self.api_url)
        self._origin = (origin.scheme, origin.netloc)

    def ping(self, company_id: str) -> None:
        """Prove the API answers for this identity and that the company exists."""
        self.get_json(f"companies({company_id})", params={"$select": "id,name"}, doing="checking the connection")

    def send_once(
        self, method: str, path: str, *, doing: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request without retrying and return the response whatever its status.

        The caller decides what may be retried: a ``$batch`` of creates must not be resent after
        an ambiguous failure, while a 429 or 503 (BC did not run the request) always may be.
        ``path`` is relative to the API root, or an absolute ``@odata.nextLink`` on the same
        origin (the bearer token is never sent to another host).

        Raises:
            RetriableError: the API could not be reached (refused, reset, timed out).
            ConfigurationError: no token could be had, or the TLS certificate is not trusted.
            PermanentError: an absolute URL points at another origin (code ``ForeignUrl``).
        """
        if path.startswith(("https://", "http://")):
            target = urlsplit(path)
            if (target.scheme, target.netloc) != self._origin:
                raise PermanentError(
                    f"{self.api_name}: {doing}: the API returned a link to another host ({target.netloc})",
                    code="ForeignUrl",
                )
            url = path
        else:
            url = f"{self.api_url}/{path}"
        all_headers = {**self._headers, "Authorization": f"Bearer {self._tokens.token()}", **(headers or {})}
        try:
            return self._session.request(
                method, url, headers=all_headers, timeout=_SINGLE_ATTEMPT_TIMEOUT_SECONDS, **kwargs
            )
        except requests.RequestException as error:
            raise transport_error(self.api_name, error, doing) from error
