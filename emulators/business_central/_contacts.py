"""Contact business relations (customer ↔ company contact) and the ``contactsInformation`` buffer.

BC keeps the link in table 5054 "Contact Business Relation"; the API does not expose that table.
Here the link is a hidden ``_customerId`` on the contact (one customer per contact, one contact per
customer: what CustCont-Update creates). ``contactsInformation`` is computed on every request the
way table 5049 "Contact Information Buffer" ``LoadDataFromFilters`` fills it: the related
customer's relation contact, then every contact whose ``companyNumber`` is that contact's number
(the company contact itself included, its Company No. being its own No.); if none has, the
relation contact alone.
"""

from __future__ import annotations

from emulators.business_central._documents import Company, entity
from emulators.business_central._errors import BcError, not_found
from emulators.business_central._schema import RELATED_TYPE
from emulators.business_central._store import Record

__all__ = [
    "LINK",
    "contacts_information",
    "create_customer_contact",
    "link_customer",
    "sync_customer_contact",
    "unlink_customer",
]

LINK = "_customerId"
# Customer fields CustCont-Update carries over to the customer's contact (API names on both sides).
_SHARED = (
    "displayName",
    "addressLine1",
    "addressLine2",
    "city",
    "state",
    "country",
    "postalCode",
    "phoneNumber",
    "email",
    "website",
    "taxRegistrationNumber",
)


def link_customer(contact: Record, customer: Record) -> None:
    """Record the business relation "Customer" between ``contact`` and ``customer``."""
    contact[LINK] = customer["id"]
    contact["contactBusinessRelation"] = "Customer"


def relation_contact(company: Company, customer_id: str) -> Record | None:
    """The contact holding the customer's business relation (the first, as AL's FindFirst)."""
    linked = [c for c in company.table("contacts").values() if c.get(LINK) == customer_id]
    return min(linked, key=lambda c: int(c.get("_seq", 0)), default=None)


def create_customer_contact(company: Company, customer: Record) -> Record:
    """The contact BC inserts with a new customer (Marketing Setup "Bus. Rel. Code for Customers" set)."""
    store = company.store
    contact: Record = {f.name: f.blank() for f in entity("contacts").fields}
    contact.update({name: customer.get(name, "") for name in _SHARED})
    contact["id"] = store.new_id()
    contact["number"] = company.free_number("contacts", 100, "CT{:06d}")
    contact["type"] = customer.get("type") or "Company"
    if contact["type"] == "Company":
        contact["companyNumber"] = contact["number"]
        contact["companyName"] = contact["displayName"]
    contact["searchName"] = str(contact["displayName"]).upper()
    link_customer(contact, customer)
    store.stamp(contact)
    store.insert(company.id, "contacts", contact, notify=False)
    return contact


def sync_customer_contact(company: Company, customer: Record) -> None:
    """Carry a customer change over to its relation contact (and a new name to that company's people)."""
    contact = relation_contact(company, customer["id"])
    if contact is None:
        return
    changes = {name: customer.get(name, "") for name in _SHARED if contact.get(name) != customer.get(name, "")}
    if not changes:
        return
    contact.update(changes)
    if "displayName" in changes:
        contact["searchName"] = str(contact["displayName"]).upper()
        if contact.get("type") == "Company":
            contact["companyName"] = contact["displayName"]
            for person in company.table("contacts").values():
                if person is not contact and person.get("companyNumber") == contact["number"]:
                    person["companyName"] = contact["displayName"]
                    company.store.stamp(person)
    company.store.stamp(contact)


def unlink_customer(company: Company, customer_id: str) -> None:
    """Deleting a customer deletes its business relation; the contact stays."""
    for contact in company.table("contacts").values():
        if contact.get(LINK) == customer_id:
            del contact[LINK]
            contact["contactBusinessRelation"] = "None"
            company.store.stamp(contact)


def contacts_information(company: Company, related_type: str, related_id: str) -> list[Record]:
    """The buffer rows for one related record, ordered by the buffer's key (contactId).

    Raises:
        BcError: an unknown ``relatedType`` (400) or customer (404).
        NotImplementedError: vendors, which this emulator does not serve.
    """
    if related_type not in RELATED_TYPE:
        valid = ", ".join(repr(v) for v in RELATED_TYPE)
        raise BcError(400, "BadRequest", f"The value '{related_type}' is not valid for 'relatedType'. Valid: {valid}.")
    if related_type == "Vendor":
        raise NotImplementedError("contactsInformation of vendors (vendors are not emulated)")
    if related_type != "Customer":
        # The buffer fills Related Id/Type only for customers and vendors; the request's own
        # relatedId/relatedType filter then leaves nothing.
        return []
    customer = company.table("customers").get(related_id)
    if customer is None:
        raise not_found("customer", related_id)
    anchor = relation_contact(company, related_id)
    if anchor is None:
        return []
    contacts = company.table("contacts").values()
    members = [c for c in contacts if c.get("companyNumber") == anchor["number"]] or [anchor]
    rows = [_row(c, customer) for c in sorted(members, key=lambda c: str(c["id"]).lower())]
    for position, row in enumerate(rows, start=1):
        row["_seq"] = position
    return rows


def _row(contact: Record, customer: Record) -> Record:
    return {
        "id": contact["id"],
        "contactId": contact["id"],
        "contactNumber": contact.get("number", ""),
        "contactName": contact.get("displayName", ""),
        "contactType": contact.get("type", "Company"),
        "relatedId": customer["id"],
        "relatedType": "Customer",
        "_version": contact.get("_version", 0),
    }
