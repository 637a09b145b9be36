"""CUSTOMER: BC ``customers`` ↔ Dataverse ``accounts`` (behaviour reference §1.3-1.4).

Lookups through couplings:

- ``salespersonCode`` → ``ownerid`` through SALESPEOPLE. The BC value is a *code*, so the lookup
  key is the salesperson's ``code`` (``DEFINITION.lookup_keys``): the use-case fills
  ``LookupTable.to_dataverse["SALESPEOPLE"]`` with code → systemuserid. Not-null: a blank or
  unresolved code keeps the account's owner;
- ``currencyId`` ↔ ``transactioncurrencyid`` through CURRENCY, by id; a blank currency (LCY) is
  turned into ``LCY_LOOKUP_KEY`` by the ``lcy_currency`` transform and resolves to Dataverse's
  base currency (and the base currency back to the empty GUID);
- ``paymentTermsId`` ↔ ``paymenttermscode`` and ``shipmentMethodId`` ↔ ``address1_freighttermscode``
  through the option mappings PAYMENT TERMS / SHIPMENT METHOD: the coupled "row id" on the
  Dataverse side is the option value (as text).

Not in the BC API v2.0 customer: Contact (name), Fax No., Shipping Agent Code, Primary Contact
No.; not in the emulated account: ``address1_freighttermscode`` (so that field is declared but
disabled). See docs/mappings.md, "Gaps".
"""

from __future__ import annotations

from types import MappingProxyType

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO, BOTH = SyncDirection.TO_DATAVERSE, SyncDirection.BIDIRECTIONAL
ACCOUNT_CUSTOMER_TYPE = 3  # account.customertypecode "Customer"

MAPPING = TableMapping(
    name="CUSTOMER",
    bc_entity_set="customers",
    dataverse_entity_set="accounts",
    dataverse_key="accountid",
    direction=BOTH,
    bc_name_field="displayName",
    dataverse_name_field="name",
    sync_only_coupled=True,
    bc_filter="blocked eq ' '",
    dataverse_filter=f"statecode eq 0 and customertypecode eq {ACCOUNT_CUSTOMER_TYPE}",
    dependencies=("SALESPEOPLE", "CURRENCY", "PAYMENT TERMS", "SHIPMENT METHOD", "SHIPPING AGENT"),
    fields=(
        FieldMapping("salespersonCode", "ownerid", TO, lookup="SALESPEOPLE", not_null=True),
        # Match-based coupling defaults to the name (case-insensitive), as an administrator would pick.
        FieldMapping("displayName", "name", BOTH, match=MatchRule()),
        FieldMapping("addressLine1", "address1_line1", BOTH),
        FieldMapping("addressLine2", "address1_line2", BOTH),
        FieldMapping("postalCode", "address1_postalcode", BOTH),
        FieldMapping("city", "address1_city", BOTH),
        FieldMapping("country", "address1_country", BOTH),
        FieldMapping("state", "address1_stateorprovince", BOTH),
        FieldMapping("currencyId", "transactioncurrencyid", BOTH, lookup="CURRENCY", transform="lcy_currency"),
        FieldMapping("email", "emailaddress1", BOTH),
        FieldMapping("website", "websiteurl", BOTH),
        FieldMapping("phoneNumber", "telephone1", BOTH),
        # Not in the emulated account; enable by override on a real organisation.
        FieldMapping("shipmentMethodId", "address1_freighttermscode", BOTH, lookup="SHIPMENT METHOD"),
        FieldMapping("paymentTermsId", "paymenttermscode", BOTH, lookup="PAYMENT TERMS"),
        FieldMapping("creditLimit", "creditlimit", TO),
    ),
    dataverse_insert_defaults=(("customertypecode", ACCOUNT_CUSTOMER_TYPE),),
    notes=(
        "Not in BC API v2.0 customers: Contact, Fax No., Shipping Agent Code, Primary Contact No.",
        "The multi-company filter (bcbi_companyid = this company or empty) needs the company row id at run "
        "time; add it with MAPPING_OVERRIDES.",
        "Account Inactive → customer Blocked = All (a subscriber rule of the built-in) is not a field mapping; "
        "inactive accounts are outside the Dataverse filter.",
        "BC config templates (BCICUST) cannot be applied through API v2.0; new customers get BC's defaults.",
    ),
)

DEFINITION = MappingDefinition(MAPPING, lookup_keys=MappingProxyType({"salespersonCode": "code"}))
