"""The link between a BC company contact and its customer, which BC API v2.0 exposes only as a
customer's ``contactsInformation``.

A person contact names its company by the company *contact's* number (``companyNumber``), while
couplings and the Dataverse parent account belong to the *customer*. This resolves one to the
other for the CONTACT mapping's parent lookup in bulk: a few requests per page, not per contact
or per company.

BC keeps a customer and the company contact of its business relation in step (CustCont-Update
carries the customer's name to the contact, and a contact's change goes back to its customer), so
a company contact whose business relation is "Customer" belongs to the one customer of its name.
Only when that does not decide it (several customers of one name, a contact with several
relations) is the link itself read, per candidate customer, from ``contactsInformation``.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.adapters.business_central.port import BusinessCentralAdapter
from shared.odata import field_name, string_literal

__all__ = ["CompanyContactKey"]

_COMPANY = "Company"
_CUSTOMER_RELATION = "Customer"
_COMPANY_CONTACTS = f"{field_name('type')} eq {string_literal(_COMPANY)}"
_Record = dict[str, object]


class CompanyContactKey:
    """Company contact number ↔ customer id, through names and, when they do not decide, the link."""

    def __init__(self, bc: BusinessCentralAdapter) -> None:
        self._bc = bc

    def _company_contact_numbers(self, customer_id: str) -> set[str]:
        return {
            str(link.get("contactNumber"))
            for link in self._bc.list_related("customers", customer_id, "contactsInformation")
            if link.get("contactType") == _COMPANY and link.get("contactNumber")
        }

    def _read(self, entity_set: str, base: str | None, name: str, values: set[str], select: list[str]) -> list[_Record]:
        """Records of ``entity_set`` (within ``base``) whose ``name`` is one of ``values``."""
        return [r for page in self._bc.find_records(entity_set, name, values, filter=base, select=select) for r in page]

    def _customers_named(self, names: set[str]) -> dict[str, list[str]]:
        customers: dict[str, list[str]] = {}
        for customer in self._read("customers", None, "displayName", names, ["displayName"]):
            customers.setdefault(str(customer["displayName"]), []).append(str(customer["id"]).lower())
        return customers

    def bc_ids(self, keys: Iterable[str]) -> dict[str, str]:
        """Company contact numbers → the id of the customer each belongs to (absent: no customer).

        Raises:
            PermanentError, RetriableError, ConfigurationError: as the adapter's reads.
        """
        numbers = set(keys)
        if not numbers:
            return {}
        select = ["number", "companyName", "displayName", "contactBusinessRelation"]
        companies = [
            c for c in self._read("contacts", _COMPANY_CONTACTS, "number", numbers, select) if c.get("companyName")
        ]
        customers = self._customers_named({str(c["companyName"]) for c in companies})
        found: dict[str, str] = {}
        for contact in companies:
            number, candidates = str(contact["number"]), customers.get(str(contact["companyName"]), [])
            if len(candidates) == 1 and contact.get("contactBusinessRelation") == _CUSTOMER_RELATION:
                found[number] = candidates[0]
                continue
            # Names do not decide: ask each candidate customer whose company contact this is.
            for customer_id in candidates:
                if number in self._company_contact_numbers(customer_id):
                    found[number] = customer_id
        return found

    def keys(self, bc_ids: Iterable[str]) -> dict[str, str]:
        """Customer ids → their company contact's number (absent: none).

        Raises:
            PermanentError, RetriableError, ConfigurationError: as the adapter's reads.
        """
        wanted = {i.lower() for i in bc_ids}
        if not wanted:
            return {}
        named = {
            k.lower(): str(v.get("displayName") or "")
            for k, v in self._bc.get_records("customers", wanted, select=["displayName"]).items()
        }
        names = {n for n in named.values() if n}
        customers = self._customers_named(names)
        contacts: dict[str, list[_Record]] = {}
        select = ["number", "displayName", "contactBusinessRelation"]
        for contact in self._read("contacts", _COMPANY_CONTACTS, "displayName", names, select):
            contacts.setdefault(str(contact["displayName"]), []).append(contact)
        found: dict[str, str] = {}
        for customer_id, name in named.items():
            linked = [c for c in contacts.get(name, []) if c.get("contactBusinessRelation") == _CUSTOMER_RELATION]
            if len(customers.get(name, [])) == 1 and len(linked) == 1:
                found[customer_id] = str(linked[0]["number"])
                continue
            numbers = self._company_contact_numbers(customer_id)
            if numbers:
                found[customer_id] = min(numbers)
        return found
