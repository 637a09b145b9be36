"""The error-mapping table for the Business Central API v2.0 (wire-protocols §D.6, §D.7).

One table serves whole responses (``business_central_error``) and the per-request answers
inside a JSON ``$batch`` (``batch_item_error``), so a failure means the same thing either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from shared.adapters._api_errors import Resolution, api_error, error_body
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError

__all__ = ["BY_CODE", "BY_STATUS", "batch_item_error", "business_central_error"]

_API_NAME = "Business Central"

BY_STATUS: dict[int, Resolution] = {
    400: Resolution(PermanentError, "the request was rejected as invalid"),
    401: Resolution(ConfigurationError, "the token was not accepted (is the app registered in BC?)"),
    403: Resolution(ConfigurationError, "the app lacks a permission set"),
    404: Resolution(PermanentError, "not found"),
    408: Resolution(RetriableError, "the request timed out"),
    409: Resolution(RetriableError, "the record changed since it was read"),
    412: Resolution(RetriableError, "the record changed since it was read"),
    413: Resolution(PermanentError, "the request or page is larger than BC allows"),
    429: Resolution(RetriableError, "rate limit reached"),
    500: Resolution(RetriableError, "server error"),
    502: Resolution(RetriableError, "bad gateway"),
    503: Resolution(RetriableError, "service unavailable"),
    504: Resolution(RetriableError, "gateway timeout"),
}

BY_CODE: dict[str, Resolution] = {
    "Authentication_InvalidCredentials": Resolution(ConfigurationError, "the credentials were rejected"),
    "Internal_CompanyNotFound": Resolution(ConfigurationError, "the company does not exist (check BC_COMPANY_ID)"),
    # Not "Internal_ServerError": BC sends that code with a 500 (retriable by status) but also
    # with the 403 of a missing permission ("Sorry, the current permissions prevented the
    # action"), which no retry fixes; the status tells the two apart.
    "Request_EntityChanged": Resolution(RetriableError, "the record changed since it was read"),
    "Application_StringExceededLength": Resolution(PermanentError, "a value is too long for its field"),
    "Application_DialogException": Resolution(PermanentError, "BC refused the change"),
    "Application_FieldValidationException": Resolution(PermanentError, "a field failed BC's validation"),
    "Application_InvalidGUID": Resolution(PermanentError, "an id is not a valid GUID"),
    "BadRequest_NotFound": Resolution(PermanentError, "not found"),
    "BadRequest_ResourceNotFound": Resolution(PermanentError, "not found"),
    "Internal_RecordNotFound": Resolution(PermanentError, "not found"),
    "Internal_EntityWithSameKeyExists": Resolution(PermanentError, "a record with the same key already exists"),
    # A missing or malformed If-Match is our bug, not the record's state: retrying cannot help.
    "BadRequest_InvalidToken": Resolution(PermanentError, "the concurrency token (If-Match) was not accepted"),
    "BadRequest_InvalidOperation": Resolution(PermanentError, "a read-only field cannot be changed"),
    "BadRequest_RequiredParamNotProvided": Resolution(PermanentError, "a required value is missing"),
    "BadRequest_MethodNotAllowed": Resolution(PermanentError, "the operation is not allowed on this resource"),
    "Unauthorized": Resolution(ConfigurationError, "the app is not authorized (permission sets?)"),
}


def business_central_error(response: requests.Response, doing: str) -> SyncError:
    """Translate a failed BC response into the connector's taxonomy."""
    code, message = error_body(response)
    return api_error(
        _API_NAME,
        response,
        doing,
        by_status=BY_STATUS,
        by_code=BY_CODE,
        service_code=code,
        service_message=message,
    )


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP-date: the caller's own backoff applies


def batch_item_error(status: int, body: Any, headers: Mapping[str, Any], doing: str) -> SyncError:
    """Translate one failed answer inside a JSON ``$batch`` (already-parsed body) into the taxonomy.

    Same rules as whole responses: a known BC error code wins over the status; unknown 5xx are
    retriable and unknown 4xx permanent.
    """
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    resolution = BY_CODE.get(code) or BY_STATUS.get(status)
    if resolution is None:
        resolution = Resolution(RetriableError if status >= 500 else PermanentError, f"HTTP {status}")
    text = f"{_API_NAME}: {doing}: {resolution.meaning}"
    if message:
        text += f": {message[:500]}"
    code = code or f"HTTP{status}"
    if resolution.category is RetriableError:
        return RetriableError(text, code=code, retry_after=_retry_after(headers))
    return resolution.category(text, code=code)
