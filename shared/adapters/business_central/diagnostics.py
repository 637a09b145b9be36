"""What the connection test asks BC: which companies the app sees, and which API pages it may not read."""

from __future__ import annotations

from collections.abc import Sequence

from shared.adapters.business_central.client import BusinessCentralApi
from shared.errors import ConfigurationError
from shared.odata import guid_literal

__all__ = ["BusinessCentralDiagnostics"]


class BusinessCentralDiagnostics:
    """``shared.usecases.connection_test.BusinessCentralChecks`` on the API v2.0."""

    def __init__(self, api: BusinessCentralApi) -> None:
        self._api = api

    def companies(self) -> dict[str, str]:
        """Company id (lower case) → name, of every company this app may use."""
        body = self._api.get_json("companies", params={"$select": "id,name"}, doing="listing the companies")
        return {str(c["id"]).lower(): str(c.get("name") or "") for c in body.get("value") or [] if c.get("id")}

    def unreadable_pages(self, company_id: str, pages: Sequence[str]) -> dict[str, str]:
        """Page → BC's message, for each page a one-record read is refused on (a missing permission set)."""
        refused: dict[str, str] = {}
        for page in pages:
            try:
                self._api.get_json(
                    f"companies({guid_literal(company_id)})/{page}",
                    params={"$top": "1"},
                    doing=f"reading one record of {page}",
                )
            except ConfigurationError as error:
                refused[page] = error.message
        return refused
