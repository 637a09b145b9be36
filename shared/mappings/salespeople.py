"""SALESPEOPLE: BC ``salespeoplePurchasers`` ← Dataverse ``systemusers`` (behaviour reference §1.3-1.4).

Sales owns the people; BC gets a salesperson per licensed, enabled, human user. Customers' and
other records' ``salespersonCode`` reach ``ownerid`` through this mapping's couplings, keyed by
the salesperson's *code* (see ``customer.py``).

Adapted to the BC API v2.0 and the emulated organisation:

- the built-in's filter: enabled, licensed users that are not integration users (which keeps
  the connector's own application user out);
- a new salesperson gets the code ``SP <first 8 hex digits of the user id>``: the built-in's number
  series ("SP NO. 00001") is not something a pure mapping can draw from.
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

FROM = SyncDirection.FROM_DATAVERSE

MAPPING = TableMapping(
    name="SALESPEOPLE",
    bc_entity_set="salespeoplePurchasers",
    dataverse_entity_set="systemusers",
    dataverse_key="systemuserid",
    direction=FROM,
    bc_name_field="displayName",
    dataverse_name_field="fullname",
    sync_only_coupled=True,
    dataverse_filter="isdisabled eq false and islicensed eq true and isintegrationuser eq false",
    fields=(
        # A new salesperson's code is derived once; renaming it in BC must not be undone.
        FieldMapping("code", "systemuserid", FROM, transform="salesperson_code", insert_only=True),
        FieldMapping("displayName", "fullname", FROM),
        FieldMapping("email", "internalemailaddress", FROM, match=MatchRule()),
        # Not in the emulated systemuser; enable by override on a real organisation.
        FieldMapping("phoneNo", "mobilephone", FROM),
    ),
    notes=(
        "New salespeople get the code 'SP ' + the first 8 hex digits of the systemuser id, written on "
        "insert only, so a code renamed in BC (or an existing one coupled by match) stays.",
        "Team ownership (no SALESPEOPLE mapping) is not modelled: disable the mapping by override.",
    ),
)

DEFINITION = MappingDefinition(MAPPING)
