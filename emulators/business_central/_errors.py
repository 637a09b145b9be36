"""BC's error shape: ``{"error": {"code": "<Category_Reason>", "message": "<text>  CorrelationId:  <guid>."}}``."""

from __future__ import annotations

import uuid

__all__ = ["BcError", "bc_error_body"]


class BcError(Exception):
    """An error answered in BC's shape; raised anywhere below the dispatch point."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bc_error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body BC sends with an error (the correlation id suffix is part of the message)."""
    return {"error": {"code": code, "message": f"{message}  CorrelationId:  {uuid.uuid4()}."}}


def not_found(entity_caption: str, key: str) -> BcError:
    """The 404 BC gives for an id that does not resolve."""
    return BcError(
        404,
        "BadRequest_NotFound",
        f"The {entity_caption} does not exist. Identification fields and values: Id='{key}'",
    )


def dialog(message: str) -> BcError:
    """An AL ``Error(...)`` surfaced through the API."""
    return BcError(400, "Application_DialogException", message)
