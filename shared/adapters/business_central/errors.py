"""The error-mapping table for the Business Central API v2.0 (wire-protocols §D.6, §D.7)."""

from __future__ import annotations

import requests

from shared.adapters._api_errors import Resolution, api_error
from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError

BY_STATUS: dict[int, Resolution] = {
    400: Resolution(PermanentError, "the request was rejected as invalid"),
    401: Resolution(ConfigurationError, "the token was not accepted (is the app registered in BC?)"),
    403: Resolution(ConfigurationError, "the app lacks a permission set"),
    404: Resolution(PermanentError, "not found"),
    408: Resolution(RetriableError, "the request timed out"),
    409: Resolution(RetriableError, "the record changed since it was read"),
    412: Resolution(RetriableError, "the record changed since it was read"),
    429: Resolution(RetriableError, "rate limit reached"),
    500: Resolution(RetriableError, "server error"),
    502: Resolution(RetriableError, "bad gateway"),
    503: Resolution(RetriableError, "service unavailable"),
    504: Resolution(RetriableError, "gateway timeout"),
}

BY_CODE: dict[str, Resolution] = {
    "Authentication_InvalidCredentials": Resolution(ConfigurationError, "the credentials were rejected"),
    "Internal_CompanyNotFound": Resolution(ConfigurationError, "the company does not exist (check BC_COMPANY_ID)"),
    "Internal_ServerError": Resolution(RetriableError, "server error"),
    "Request_EntityChanged": Resolution(RetriableError, "the record changed since it was read"),
    "Application_StringExceededLength": Resolution(PermanentError, "a value is too long for its field"),
    "Application_DialogException": Resolution(PermanentError, "BC refused the change"),
    "BadRequest_NotFound": Resolution(PermanentError, "not found"),
    "Unauthorized": Resolution(ConfigurationError, "the app is not authorized (permission sets?)"),
}


def business_central_error(response: requests.Response, doing: str) -> SyncError:
    """Translate a failed BC response into the connector's taxonomy."""
    code, message = "", ""
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except ValueError:
        message = response.text[:300]
    return api_error(
        "Business Central",
        response,
        doing,
        by_status=BY_STATUS,
        by_code=BY_CODE,
        service_code=code,
        service_message=message,
    )
