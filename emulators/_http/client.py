"""Client-side helpers: an HTTPS session that trusts an emulator's CA, and the back-door client.

Used by test fixtures, ``make run`` and benchmarks; production code never imports this.
"""

from __future__ import annotations

from typing import Any

import requests

__all__ = ["BackDoor", "https_session"]


def https_session(ca_bundle: str) -> requests.Session:
    """A session that verifies TLS against ``ca_bundle``.

    ``trust_env`` is off because this machine sets ``REQUESTS_CA_BUNDLE``, which requests lets
    override a session's ``verify``; it also keeps proxies configured for the internet away from
    loopback.
    """
    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False
    return session


class BackDoor:
    """The emulator's ``/_emulator`` back door, from a start line's ``admin`` entry.

    Every method raises ``requests.HTTPError`` when the emulator refuses.
    """

    def __init__(self, start_line: dict[str, Any], *, timeout: float = 30.0) -> None:
        admin = start_line["admin"]
        self.url = str(admin["url"]).rstrip("/")
        self._headers = {str(admin["header"]): str(admin["key"])}
        self._session = https_session(str(start_line["ca_bundle"]))
        self._timeout = timeout

    def call(self, method: str, action: str, body: Any = None) -> Any:
        """Call ``/_emulator/<action>``; return the JSON answer (``None`` for 204)."""
        response = self._session.request(
            method, f"{self.url}/{action}", json=body, headers=self._headers, timeout=self._timeout
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def seed(self, spec: dict[str, Any]) -> Any:
        """Load data, e.g. ``{"name": "demo"}``."""
        return self.call("POST", "seed", spec)

    def snapshot(self) -> Any:
        """The whole state (deep copy)."""
        return self.call("GET", "snapshot")

    def restore(self, snapshot: Any) -> None:
        """Put back an earlier :meth:`snapshot`."""
        self.call("POST", "restore", snapshot)

    def reset(self) -> None:
        """Empty the state and disarm all faults."""
        self.call("POST", "reset")

    def fail_next(
        self,
        status: int,
        *,
        method: str = "*",
        path: str = "",
        count: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> Any:
        """Answer the next ``count`` matching requests with ``status`` (``path`` is a regex)."""
        return self.call(
            "POST",
            "faults",
            {
                "kind": "fail",
                "status": status,
                "method": method,
                "path": path,
                "count": count,
                "body": body,
                "headers": headers or {},
                "retry_after": retry_after,
            },
        )

    def throttle(self, *, method: str = "*", path: str = "", count: int = 1, retry_after: float = 1) -> Any:
        """Answer the next ``count`` matching requests with 429 and ``Retry-After``."""
        return self.call(
            "POST",
            "faults",
            {
                "kind": "throttle",
                "status": 429,
                "method": method,
                "path": path,
                "count": count,
                "retry_after": retry_after,
            },
        )

    def delay(self, seconds: float, *, method: str = "*", path: str = "", count: int = 1) -> Any:
        """Hold the next ``count`` matching requests for ``seconds`` before executing them."""
        return self.call(
            "POST",
            "faults",
            {
                "kind": "delay",
                "delay": seconds,
                "method": method,
                "path": path,
                "count": count,
            },
        )

    def drop_after_commit(self, *, method: str = "*", path: str = "", count: int = 1) -> Any:
        """Execute the next ``count`` matching requests, then close the connection unanswered."""
        return self.call("POST", "faults", {"kind": "drop", "method": method, "path": path, "count": count})

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.call("DELETE", "faults")

    def request_counts(self, *, reset: bool = False) -> dict[str, Any]:
        """API requests served so far (``{"requests": n, "by_kind": {...}}``); ``reset`` zeroes them."""
        counts: dict[str, Any] = self.call("DELETE" if reset else "GET", "stats")
        return counts

    def faults(self) -> Any:
        """Armed faults and how many fired per kind."""
        return self.call("GET", "faults")

    def costs(self, **settings: Any) -> Any:
        """Read, or with keyword arguments change, the cost model (costs, default, time_scale, sleep)."""
        return self.call("PATCH", "costs", settings) if settings else self.call("GET", "costs")

    def mint_token(self, *, audience: str | None = None, lifetime: float | None = None, foreign: bool = False) -> str:
        """A token signed by the issuer (negative ``lifetime`` = expired; ``foreign`` = untrusted key)."""
        body: dict[str, Any] = {"lifetime": lifetime, "foreign": foreign}
        if audience is not None:
            body["audience"] = audience
        return str(self.call("POST", "token", body)["access_token"])

    def set_token_lifetime(self, seconds: float) -> None:
        """Lifetime of tokens the token endpoint issues from now on."""
        self.call("PATCH", "auth", {"token_lifetime": seconds})
