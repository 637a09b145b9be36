"""The error-mapping table for Azure Table Storage: SDK exceptions → the connector's categories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import ConfigurationError, PermanentError, RetriableError, SyncError

# Status code → (category, what it means for us). Consulted when no more specific rule applies.
_BY_STATUS: dict[int, tuple[Callable[..., SyncError], str]] = {
    400: (PermanentError, "Table Storage rejected the request as invalid"),
    401: (ConfigurationError, "Table Storage refused the credential"),
    403: (ConfigurationError, "the identity lacks a Table Storage data role"),
    404: (ConfigurationError, "the table does not exist"),
    408: (RetriableError, "Table Storage timed out"),
    409: (RetriableError, "a concurrent write conflicted"),
    412: (RetriableError, "the row changed since it was read"),
    429: (RetriableError, "Table Storage is throttling"),
    500: (RetriableError, "Table Storage had an internal error"),
    503: (RetriableError, "Table Storage is unavailable"),
}


def map_table_error(error: Exception, doing: str) -> SyncError:
    """Translate an azure-data-tables exception raised while ``doing`` something into our taxonomy."""
    if isinstance(error, ResourceModifiedError):
        return RetriableError(f"{doing}: the row changed since it was read", code="ConcurrencyConflict")
    if isinstance(error, ClientAuthenticationError):
        return ConfigurationError(f"{doing}: Table Storage refused the credential", code="TableAuthFailed")
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return RetriableError(f"{doing}: Table Storage is unreachable ({type(error).__name__})", code="Unreachable")
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        category, meaning = _BY_STATUS.get(status, (RetriableError if status >= 500 else PermanentError, ""))
        service_code = getattr(error, "error_code", None) or ""
        detail = f"{meaning} ({status} {service_code})".strip() if meaning else f"HTTP {status} {service_code}"
        return category(f"{doing}: {detail}", code=f"Table{status}")
    return RetriableError(f"{doing}: {type(error).__name__}", code="TableUnknown")


@contextmanager
def table_errors(doing: str) -> Iterator[None]:
    """Re-raise SDK exceptions from the block as the connector's categories."""
    try:
        yield
    except SyncError:
        raise
    except (HttpResponseError, ServiceRequestError, ServiceResponseError, ClientAuthenticationError) as error:
        raise map_table_error(error, doing) from error
