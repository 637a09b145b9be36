"""The error-mapping table for the Dataverse Web API (wire-protocols §A.6, §A.7)."""

from __future__ import annotations

import requests

from shared.adapters._api_errors import Resolution, api_error
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError

BY_STATUS: dict[int, Resolution] = {
    400: Resolution(PermanentError, "the request was rejected as invalid"),
    401: Resolution(ConfigurationError, "the token was not accepted (is the application user set up?)"),
    403: Resolution(ConfigurationError, "the application user lacks a privilege"),
    404: Resolution(PermanentError, "not found"),
    409: Resolution(RetriableError, "a conflicting write is in progress"),
    412: Resolution(RetriableError, "the row changed since it was read"),
    429: Resolution(RetriableError, "service protection limit reached"),
    500: Resolution(RetriableError, "server error"),
    502: Resolution(RetriableError, "bad gateway"),
    503: Resolution(RetriableError, "service unavailable"),
    504: Resolution(RetriableError, "gateway timeout"),
}

BY_CODE: dict[str, Resolution] = {
    # Service protection (request count, execution time, concurrency).
    "0x80072322": Resolution(RetriableError, "service protection: too many requests"),
    "0x80072321": Resolution(RetriableError, "service protection: execution time limit"),
    "0x80072326": Resolution(RetriableError, "service protection: too many concurrent requests"),
    # Privilege and user problems: the deployment must be fixed.
    "0x80040220": Resolution(ConfigurationError, "the application user lacks a privilege"),
    "0x8004d24b": Resolution(ConfigurationError, "the application user is disabled or has no security role"),
    # Bad input that no retry fixes.
    "0x80044331": Resolution(PermanentError, "a value is too long for its column"),
    "0x80040217": Resolution(PermanentError, "the referenced row does not exist"),
}


def dataverse_error(response: requests.Response, doing: str) -> SyncError:
    """Translate a failed Dataverse response into the connector's taxonomy."""
    code, message = "", ""
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except ValueError:
        message = response.text[:300]
    return api_error(
        "Dataverse", response, doing, by_status=BY_STATUS, by_code=BY_CODE, service_code=code, service_message=message
    )
