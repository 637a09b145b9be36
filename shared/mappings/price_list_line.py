"""PLLINE-PRODPRICE: BC sales price list line → Dataverse ``productpricelevels`` (new pricing experience).

**Unavailable** for the reason given in ``price_list_header.py``. Lookups are by code, as a
price list line names its list, item and unit by code: ``priceListCode`` → PLHEADER-PRICE by the
list's ``code``, ``assetNo`` → ITEM-PRODUCT by the item's ``number``, ``unitOfMeasureCode`` →
UNIT OF MEASURE by the unit's ``code``. Not "sync only coupled": every line in the filter is
created, as the built-in.
"""

from __future__ import annotations

from types import MappingProxyType

from shared.domain.mapping import FieldMapping, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO = SyncDirection.TO_DATAVERSE
CURRENCY_AMOUNT = 1  # productpricelevel.pricingmethodcode

MAPPING = TableMapping(
    name="PLLINE-PRODPRICE",
    bc_entity_set="priceListLines",
    dataverse_entity_set="productpricelevels",
    dataverse_key="productpricelevelid",
    direction=TO,
    bc_name_field="assetNo",
    dataverse_name_field="productidname",
    sync_only_coupled=False,
    bc_filter="priceType eq 'Sale' and amountType eq 'Price' and assetType eq 'Item' and minimumQuantity eq 0",
    dependencies=("PLHEADER-PRICE", "ITEM-PRODUCT"),
    fields=(
        FieldMapping("priceListCode", "pricelevelid", TO, lookup="PLHEADER-PRICE"),
        FieldMapping("assetNo", "productid", TO, lookup="ITEM-PRODUCT"),
        FieldMapping("currencyId", "transactioncurrencyid", TO, lookup="CURRENCY", transform="lcy_currency"),
        FieldMapping(None, "pricingmethodcode", TO, constant=CURRENCY_AMOUNT),
        FieldMapping("unitOfMeasureCode", "uomscheduleid", TO, lookup="UNIT OF MEASURE"),
        FieldMapping("unitPrice", "amount", TO),
    ),
    notes=(
        "Unavailable: BC API v2.0 has no price list line entity; see docs/mappings.md.",
        "The built-in also writes productnumber; the local emulator's productpricelevel lacks it.",
    ),
)

DEFINITION = MappingDefinition(
    MAPPING,
    unavailable_reason="BC API v2.0 has no price list line entity (priceListLines); a custom API page is needed.",
    lookup_keys=MappingProxyType({"priceListCode": "code", "assetNo": "number", "unitOfMeasureCode": "code"}),
)
