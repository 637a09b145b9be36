"""Turning use-case results and the error taxonomy into HTTP responses (JSON in and out)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
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
    "NotCoupled": 404,
    "UnknownMapping": 404,
    "CouplingConflict": 409,
    "AlreadyCoupled": 409,
    "MergeConflict": 409,
    "MappingBusy": 409,
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


def json_body(req: func.HttpRequest) -> dict[str, Any]:
    """The request's JSON object body (empty body → ``{}``).

    Raises:
        PermanentError: ``InvalidJson`` when the body is not a JSON object.
    """
    raw = req.get_body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise PermanentError(f"the request body is not valid JSON: {error}", code="InvalidJson") from error
    if not isinstance(body, dict):
        raise PermanentError("the request body must be a JSON object", code="InvalidJson")
    return body


def http_errors(
    handler: Callable[[func.HttpRequest], func.HttpResponse],
) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Answer categorized errors in the one error shape; anything else is a logged 500 with no detail."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except SyncError as error:
            return sync_error_response(error)
        except Exception:
            _log.exception("unexpected error in %s", handler.__name__)
            return error_response("InternalError", "an unexpected error occurred; it has been logged", 500)

    return wrapper
