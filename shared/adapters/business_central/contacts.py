"""The link between a BC company contact and its customer, which BC API v2.0 exposes only as a
customer's ``contactsInformation``.

A person contact names its company by the company *contact's* number (``companyNumber``), while
couplings and the Dataverse parent account belong to the *customer*. This resolves one to the
other for the CONTACT mapping's parent lookup, with requests per distinct company, not per
contact.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.adapters.business_central.port import BusinessCentralAdapter
from shared.odata import any_of

__all__ = ["CompanyContactKey"]

_COMPANY = "Company"


class CompanyContactKey:
    """Company contact number ↔ customer id, through the customers' ``contactsInformation``."""

    def __init__(self, bc: BusinessCentralAdapter) -> None:
        self._bc = bc

    def _company_contact_numbers(self, customer_id: str) -> set[str]:
        return {
            str(link.get("contactNumber"))
            for link in self._bc.list_related("customers", customer_id, "contactsInformation")
            if link.get("contactType") == _COMPANY and link.get("contactNumber")
        }

    def bc_ids(self, keys: Iterable[str]) -> dict[str, str]:
        """Company contact numbers → the id of the customer each belongs to (absent: no customer).

        Raises:
            PermanentError, RetriableError, ConfigurationError: as the adapter's reads.
        """
        numbers = sorted(set(keys))
        if not numbers:
            return {}
        companies = [
            c
            for page in self._bc.list_records(
                "contacts", filter=any_of("number", numbers), select=["number", "companyName"]
            )
            for c in page
        ]
        names = sorted({str(c["companyName"]) for c in companies if c.get("companyName")})
        if not names:
            return {}
        # BC names a customer's company contact after the customer; confirm through the link.
        candidates = [
            c
            for page in self._bc.list_records("customers", filter=any_of("displayName", names), select=["displayName"])
            for c in page
        ]
        found: dict[str, str] = {}
        for customer in candidates:
            for number in self._company_contact_numbers(str(customer["id"])) & set(numbers):
                found[number] = str(customer["id"]).lower()
        return found

    def keys(self, bc_ids: Iterable[str]) -> dict[str, str]:
        """Customer ids → their company contact's number (absent: none).

        Raises:
            PermanentError, RetriableError, ConfigurationError: as the adapter's reads.
        """
        found = {}
        for customer_id in set(bc_ids):
            numbers = self._company_contact_numbers(customer_id)
            if numbers:
                found[customer_id.lower()] = min(numbers)
        return found
