"""The error-mapping table for the Dataverse Web API (wire-protocols §A.6, §A.7).

Codes marked "Doc" come from Microsoft Learn; the others are the best-known values, which the
local emulator answers with too (``emulators/dataverse/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests
from requests.structures import CaseInsensitiveDict

from shared.adapters._api_errors import Resolution, api_error, error_body
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError

__all__ = [
    "BY_CODE",
    "BY_STATUS",
    "MESSAGE_NOT_SUPPORTED",
    "SERVICE_PROTECTION_CODES",
    "dataverse_error",
    "part_error",
]

BY_STATUS: dict[int, Resolution] = {
    400: Resolution(PermanentError, "the request was rejected as invalid"),
    401: Resolution(ConfigurationError, "the token was not accepted (is the application user set up?)"),
    403: Resolution(ConfigurationError, "the application user lacks a privilege"),
    404: Resolution(PermanentError, "not found"),
    405: Resolution(PermanentError, "the operation is not supported here"),
    409: Resolution(RetriableError, "a conflicting write is in progress"),
    412: Resolution(RetriableError, "the row changed since it was read"),
    413: Resolution(PermanentError, "the request is too large"),
    429: Resolution(RetriableError, "service protection limit reached"),
    500: Resolution(RetriableError, "server error"),
    501: Resolution(PermanentError, "the operation is not implemented by the service"),
    502: Resolution(RetriableError, "bad gateway"),
    503: Resolution(RetriableError, "service unavailable"),
    504: Resolution(RetriableError, "gateway timeout"),
}

TOO_MANY_REQUESTS = "0x80072322"
TOO_MUCH_TIME = "0x80072321"
TOO_MANY_CONCURRENT = "0x80072326"
MESSAGE_NOT_SUPPORTED = "0x80040800"
DUPLICATE_RECORD = "0x80040237"

# The 429 codes: the adapter slows down and waits instead of giving up on these.
SERVICE_PROTECTION_CODES = frozenset({TOO_MANY_REQUESTS, TOO_MUCH_TIME, TOO_MANY_CONCURRENT})

BY_CODE: dict[str, Resolution] = {
    # Service protection (request count, execution time, concurrency). Doc.
    TOO_MANY_REQUESTS: Resolution(RetriableError, "service protection: too many requests"),
    TOO_MUCH_TIME: Resolution(RetriableError, "service protection: execution time limit"),
    TOO_MANY_CONCURRENT: Resolution(RetriableError, "service protection: too many concurrent requests"),
    # Privilege and user problems: the deployment must be fixed.
    "0x80040220": Resolution(ConfigurationError, "the application user lacks a privilege"),
    "0x8004d24b": Resolution(ConfigurationError, "the application user is disabled or has no security role"),
    "0x80072560": Resolution(ConfigurationError, "the application user is not a member of the organization"),
    # Bad input that no retry fixes.
    "0x80044331": Resolution(PermanentError, "a value is too long or out of range for its column"),  # Doc
    "0x80040217": Resolution(PermanentError, "the referenced row does not exist"),
    "0x80048d19": Resolution(PermanentError, "a value has the wrong type for its column"),
    "0x80060888": Resolution(PermanentError, "the query or property is not supported"),
    "0x80040203": Resolution(PermanentError, "a business rule rejected the values"),
    "0x80040227": Resolution(PermanentError, "the row is read-only in its current state"),
    MESSAGE_NOT_SUPPORTED: Resolution(PermanentError, "the message is not supported for this table"),
    # A 412 that is not a version mismatch: another row already has these key values.
    DUPLICATE_RECORD: Resolution(PermanentError, "a row with the same key already exists"),
    # An expired change-tracking token: only a full read recovers.
    "0x80044352": Resolution(PermanentError, "the change-tracking token has expired"),
}


def dataverse_error(response: requests.Response, doing: str) -> SyncError:
    """Translate a failed Dataverse response into the connector's taxonomy."""
    code, message = error_body(response)
    return api_error(
        "Dataverse", response, doing, by_status=BY_STATUS, by_code=BY_CODE, service_code=code, service_message=message
    )


def part_error(status: int, headers: Mapping[str, str], body: bytes, doing: str) -> SyncError:
    """Translate one failed ``$batch`` part (its own status, headers and body) with the same table."""
    # A part is a complete HTTP response; wrapping it lets one function classify both shapes.
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response._content = body  # requests keeps the body here; there is no public setter
    response.encoding = "utf-8"
    return dataverse_error(response, doing)
