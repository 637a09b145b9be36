"""HTTP sessions for the two APIs: connection pooling and the trusted CA set once."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter


class ApiSession(requests.Session):
    """A ``requests.Session`` that always verifies against ``ca_bundle`` when one is given.

    requests lets the ``REQUESTS_CA_BUNDLE`` environment variable override a session's
    ``verify`` unless each request passes ``verify`` itself, so this session passes it on every
    request, including the token requests MSAL sends through it.
    """

    def __init__(self, ca_bundle: str | None = None, *, pool_size: int = 32) -> None:
        super().__init__()
        self._ca_bundle = ca_bundle
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Send a request, verifying TLS against the configured CA bundle if there is one."""
        if self._ca_bundle and kwargs.get("verify") is None:
            kwargs["verify"] = self._ca_bundle
        return super().request(method, url, *args, **kwargs)
