"""BC API v2.0 reads the sync engine's port does not make: a document with its lines in one request
(``$expand``), and filters on records that have no ``lastModifiedDateTime`` to order by."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shared.adapters.business_central.port import MAX_PAGE_SIZE, BusinessCentralAdapter
from shared.errors import PermanentError
from shared.odata import field_name

__all__ = ["BusinessCentralQueryAdapter"]


class BusinessCentralQueryAdapter(BusinessCentralAdapter):
    """``shared.ports.BusinessCentralQueries`` over the same client, paging and error mapping as the port."""

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        expand: Mapping[str, Sequence[str]] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Sequence[dict[str, Any]]]:
        """Pages of records in the API's key order, lazily.

        Args:
            entity_set: the API page, e.g. ``salesInvoices``.
            filter: an OData filter built with ``shared.odata``.
            select: properties to return (``id`` is always added).
            expand: collection navigation → properties to return of it, e.g.
                ``{"salesInvoiceLines": ["quantity", "unitPrice"]}`` (an empty list reads them all).
            page_size: records per page, 1 to 20,000 (expanded lines do not count).

        Raises:
            PermanentError: a bad name or page size, or a query BC rejects.
            RetriableError, ConfigurationError: as every read of the port.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise PermanentError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}", code="InvalidPageSize")
        params: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = self._select(select)
        if expand:
            params["$expand"] = ",".join(
                f"{field_name(nav)}($select={self._select(fields)})" if fields else field_name(nav)
                for nav, fields in expand.items()
            )
        return self._pages(self._set_path(entity_set), params, page_size, f"reading {entity_set}")
