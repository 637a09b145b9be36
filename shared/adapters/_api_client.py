"""One authenticated JSON-over-HTTPS client shape for both APIs; each API supplies its error table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
import stamina

from shared.adapters._api_errors import transport_error
from shared.adapters.auth import TokenProvider
from shared.errors import RetriableError, SyncError
from shared.pages import JsonPage, Record

# Retry in process only what is cheap to retry; longer outages go back to Service Bus.
_RETRY_ATTEMPTS = 4
_RETRY_TIMEOUT_SECONDS = 45.0
_REQUEST_TIMEOUT_SECONDS = 30.0

ErrorMapper = Callable[[requests.Response, str], SyncError]


def collection_page(response: requests.Response, convert: Callable[[Record], Record] | None = None) -> JsonPage:
    """The collection page a GET answered, its records left unparsed until read (``JsonPage``).

    Raises:
        ValueError: the body is not UTF-8 JSON with a ``value`` array (each API maps this to its
            own error).
    """
    # JSON on the wire is UTF-8 (RFC 8259); a byte-order mark is tolerated as json.loads does.
    return JsonPage(response.content.decode("utf-8-sig"), convert)


def _backoff(error: Exception) -> bool | float:
    # Honour the server's Retry-After when it gave one; otherwise stamina's jittered backoff.
    if isinstance(error, RetriableError):
        return error.retry_after if error.retry_after is not None else True
    return False


class ApiClient:
    """Sends requests to one API root with a bearer token, mapping failures to our categories."""

    def __init__(
        self,
        api_name: str,
        api_url: str,
        tokens: TokenProvider,
        session: requests.Session,
        *,
        map_error: ErrorMapper,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.api_name = api_name
        self.api_url = api_url.rstrip("/")
        self._tokens = tokens
        self._session = session
        self._map_error = map_error
        self._headers = {"Accept": "application/json", **(headers or {})}

    def get_json(self, path: str, *, params: Mapping[str, str] | None = None, doing: str = "") -> dict[str, Any]:
        """GET ``path`` (relative to the API root) and return the JSON body.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the API's error table.
        """
        response = self.send("GET", path, params=params, doing=doing or f"reading {path}")
        body: dict[str, Any] = response.json()
        return body

    def send(self, method: str, path: str, *, doing: str, **kwargs: Any) -> requests.Response:
        """Send one request, retrying retriable failures briefly in process.

        Raises:
            ConfigurationError, PermanentError, RetriableError: per the API's error table.
        """
        # Taken out once: every attempt must send the caller's headers (If-Match, Prefer, ...).
        extra_headers = kwargs.pop("headers", None) or {}
        for attempt in stamina.retry_context(on=_backoff, attempts=_RETRY_ATTEMPTS, timeout=_RETRY_TIMEOUT_SECONDS):
            with attempt:
                headers = {**self._headers, "Authorization": f"Bearer {self._tokens.token()}", **extra_headers}
                try:
                    response = self._session.request(
                        method, f"{self.api_url}/{path}", headers=headers, timeout=_REQUEST_TIMEOUT_SECONDS, **kwargs
                    )
                except requests.RequestException as error:
                    raise transport_error(self.api_name, error, doing) from error
                if response.status_code >= 400:
                    raise self._map_error(response, doing)
                return response
        raise AssertionError("unreachable: stamina re-raises the last error")
