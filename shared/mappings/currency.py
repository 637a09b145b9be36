"""CURRENCY: BC ``currencies`` → Dataverse ``transactioncurrencies`` (behaviour reference §1.4).

Match-based coupling on the ISO code (``code`` = ``isocurrencycode``), create new if no match,
synchronize after coupling, as the built-in sets it up.

Adapted to the BC API v2.0: it exposes no exchange rates, so the built-in's computed
``exchangerate`` cannot be kept current. Dataverse requires one on create; new currencies are
created with 1 and the rate must be maintained in Sales (documented in docs/mappings.md). The LCY
currency is never a BC currency record: it is Dataverse's base currency, reached through
``transforms.LCY_LOOKUP_KEY`` (see ``customer.py``).
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO = SyncDirection.TO_DATAVERSE

MAPPING = TableMapping(
    name="CURRENCY",
    bc_entity_set="currencies",
    dataverse_entity_set="transactioncurrencies",
    dataverse_key="transactioncurrencyid",
    direction=TO,
    bc_name_field="code",
    dataverse_name_field="isocurrencycode",
    sync_only_coupled=True,
    sync_after_match_coupling=True,
    create_new_if_no_match=True,
    fields=(
        FieldMapping("code", "isocurrencycode", TO, match=MatchRule()),
        FieldMapping("symbol", "currencysymbol", TO),
        FieldMapping("displayName", "currencyname", TO),
    ),
    dataverse_insert_defaults=(("exchangerate", 1),),
    notes=(
        "BC API v2.0 has no exchange rates: new Dataverse currencies get exchangerate 1; maintain rates in Sales.",
        "isocurrencycode cannot be updated in Dataverse: renaming a BC currency code fails that record.",
    ),
)

DEFINITION = MappingDefinition(MAPPING)
