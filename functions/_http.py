"""Turning use-case results and the error taxonomy into HTTP responses (JSON in and out)."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.errors import ConfigurationError, PermanentError, RetriableError, SkippableError, SyncError

_log = logging.getLogger(__name__)

# Category → HTTP status when a use-case raises it. Specific codes can override (see below).
_STATUS_BY_CATEGORY: list[tuple[type[SyncError], int]] = [
    (ConfigurationError, 503),
    (RetriableError, 503),
    (PermanentError, 400),
    (SkippableError, 409),
]
_STATUS_BY_CODE: dict[str, int] = {
    "NotFound": 404,
    "CouplingConflict": 409,
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON response."""
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/json", headers=headers
    )


def error_response(code: str, message: str, status: int) -> func.HttpResponse:
    """An error in the one shape every route uses: ``{"error": {"code", "message"}}``."""
    return json_response({"error": {"code": code, "message": message}}, status)


def sync_error_response(error: SyncError) -> func.HttpResponse:
    """The response for a categorized error; messages are already free of secrets."""
    status = _STATUS_BY_CODE.get(error.code) or next(
        (s for category, s in _STATUS_BY_CATEGORY if isinstance(error, category)), 500
    )
    headers = None
    if isinstance(error, RetriableError) and error.retry_after is not None:
        headers = {"Retry-After": str(int(error.retry_after + 0.999))}
    if status >= 500:
        _log.warning("request failed: %s: %s", error.code, error.message)
    return json_response({"error": {"code": error.code, "message": error.message}}, status, headers)
