"""Shared shape of the per-API error-mapping tables: status → category, refined by service code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests

from shared.errors import ConfigurationError, PermanentError, RetriableError, SkippableError, SyncError

Category = Callable[..., SyncError]


@dataclass(frozen=True)
class Resolution:
    """What an API error means for us."""

    category: Category
    meaning: str


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date; callers fall back to their own backoff


def api_error(
    api_name: str,
    response: requests.Response,
    doing: str,
    *,
    by_status: Mapping[int, Resolution],
    by_code: Mapping[str, Resolution],
    service_code: str,
    service_message: str,
) -> SyncError:
    """Build the categorized error for a failed API response.

    A known service error code wins over the status; otherwise the status decides; unknown
    5xx are retriable and unknown 4xx permanent. The message quotes the service's own message
    (APIs do not echo credentials in error bodies) so an administrator sees the real cause.
    """
    resolution = by_code.get(service_code) or by_status.get(response.status_code)
    if resolution is None:
        resolution = Resolution(
            RetriableError if response.status_code >= 500 else PermanentError, f"HTTP {response.status_code}"
        )
    text = f"{api_name}: {doing}: {resolution.meaning}"
    if service_message:
        text += f": {service_message[:500]}"
    code = service_code or f"HTTP{response.status_code}"
    if resolution.category is RetriableError:
        return RetriableError(text, code=code, retry_after=_retry_after(response))
    return resolution.category(text, code=code)


def error_body(response: requests.Response) -> tuple[str, str]:
    """``(code, message)`` of an OData error body ``{"error": {"code", "message"}}`` (both APIs use it).

    A body that is not that JSON (a gateway's HTML page) gives no code and its first 300 characters.
    """
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code", "")), str(error.get("message", ""))


def transport_error(api_name: str, error: requests.RequestException, doing: str) -> SyncError:
    """A connection-level failure (refused, reset, timeout, TLS) as a category."""
    if isinstance(error, requests.exceptions.SSLError):
        return ConfigurationError(
            f"{api_name}: {doing}: the server's TLS certificate is not trusted (set CONNECTOR_CA_BUNDLE for a "
            "local emulator)",
            code="TlsUntrusted",
        )
    return RetriableError(f"{api_name}: {doing}: unreachable ({type(error).__name__})", code="Unreachable")


__all__ = ["Resolution", "SkippableError", "api_error", "error_body", "transport_error"]
