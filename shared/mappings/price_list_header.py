"""PLHEADER-PRICE: BC sales price list header → Dataverse ``pricelevels`` (new pricing experience).

Why this pair and not CUSTPRCGRP-PRICE / SALESPRC-PRODPRICE: the BC API v2.0 can express
*neither* (it has no customer price groups, sales prices, price lists or price list lines), so
the choice is which one to keep ready. The new pricing experience (Price List Header/Line) is the
current BC default and the legacy Sales Price table is obsolete, so this pair is defined, in the
v2.0 naming style a custom API page ``priceLists`` / ``priceListLines`` would use, and kept
**unavailable**. What *does* reach Sales without it: each item's ``unitPrice`` as the product's
list price (ITEM-PRODUCT), which the use-case also writes to the default price list.
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO = SyncDirection.TO_DATAVERSE

MAPPING = TableMapping(
    name="PLHEADER-PRICE",
    bc_entity_set="priceLists",
    dataverse_entity_set="pricelevels",
    dataverse_key="pricelevelid",
    direction=TO,
    bc_name_field="code",
    dataverse_name_field="name",
    sync_only_coupled=True,
    bc_filter="priceType eq 'Sale' and amountType eq 'Price'",
    dependencies=("CURRENCY", "ITEM-PRODUCT"),
    fields=(
        FieldMapping("code", "name", TO),
        FieldMapping("description", "description", TO),
        FieldMapping("currencyId", "transactioncurrencyid", TO, lookup="CURRENCY", transform="lcy_currency"),
        FieldMapping("startingDate", "begindate", TO),
        FieldMapping("endingDate", "enddate", TO),
        FieldMapping("status", "statecode", TO, transform="price_list_state"),
    ),
    notes=("Unavailable: BC API v2.0 has no price list entity; see docs/mappings.md.",),
)

DEFINITION = MappingDefinition(
    MAPPING,
    unavailable_reason="BC API v2.0 has no price list entity (priceLists); a custom API page is needed.",
)
