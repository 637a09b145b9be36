"""CONTACT: BC ``contacts`` ↔ Dataverse ``contacts`` (behaviour reference §1.3-1.4).

Person contacts that belong to a company contact; their Dataverse parent is the account coupled
to that company's customer. The BC API v2.0 contact says only ``companyNumber`` (the *company
contact's* number), not the customer, so the parent lookup through CUSTOMER is keyed by
``companyContactNumber``: the use-case fills ``LookupTable.to_dataverse["CUSTOMER"]`` with
company contact number → accountid from BC's ``contactsInformation`` (contact ↔ customer
relations), and ``to_bc["CUSTOMER"]`` with accountid → that company contact number. A contact
whose company is no coupled customer fails naming CUSTOMER, the built-in's "the company does not
exist" case.

The BC API v2.0 contact has one name (``displayName``); Dataverse has first and last name and a
computed, read-only ``fullname``. Towards Dataverse the display name is split (last word =
last name); towards BC ``fullname`` is taken whole.
"""

from __future__ import annotations

from types import MappingProxyType

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO, FROM, BOTH = SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE, SyncDirection.BIDIRECTIONAL

MAPPING = TableMapping(
    name="CONTACT",
    bc_entity_set="contacts",
    dataverse_entity_set="contacts",
    dataverse_key="contactid",
    direction=BOTH,
    bc_name_field="displayName",
    dataverse_name_field="fullname",
    sync_only_coupled=True,
    bc_filter="type eq 'Person' and companyNumber ne ''",
    dataverse_filter="statecode eq 0 and _parentcustomerid_value ne null",
    dependencies=("CUSTOMER",),
    fields=(
        FieldMapping("companyNumber", "parentcustomerid", BOTH, lookup="CUSTOMER"),
        FieldMapping("displayName", "firstname", TO, transform="first_name"),
        FieldMapping("displayName", "lastname", TO, transform="last_name"),
        FieldMapping("displayName", "fullname", FROM),
        FieldMapping("addressLine1", "address1_line1", BOTH),
        FieldMapping("addressLine2", "address1_line2", BOTH),
        FieldMapping("postalCode", "address1_postalcode", BOTH),
        FieldMapping("city", "address1_city", BOTH),
        FieldMapping("country", "address1_country", BOTH),
        FieldMapping("state", "address1_stateorprovince", BOTH),
        FieldMapping("email", "emailaddress1", BOTH, match=MatchRule()),  # e-mail identifies a person
        FieldMapping("phoneNumber", "telephone1", BOTH),
        FieldMapping("mobilePhoneNumber", "mobilephone", BOTH),
        # Not in the emulated contact; enable by override on a real organisation.
        FieldMapping("website", "websiteurl", BOTH),
    ),
    bc_insert_defaults=(("type", "Person"),),
    notes=(
        "Not in BC API v2.0 contacts: Salesperson Code, Currency Code, First/Middle Name/Surname, Fax No., Pager.",
        "Parent account comes from companyNumber through the company's customer (BC contactsInformation).",
        "The multi-company filter (bcbi_companyid) needs the company row id at run time; add it by override.",
    ),
)

DEFINITION = MappingDefinition(MAPPING, lookup_keys=MappingProxyType({"companyNumber": "companyContactNumber"}))
