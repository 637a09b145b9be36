"""ITEM-PRODUCT: BC ``items`` ↔ Dataverse ``products`` of type Sales Inventory (behaviour reference §1.4).

Fixed values on a new product (the built-in's subscriber): product type Sales Inventory,
``quantitydecimal`` 2, structure Product. The product's currency is always LCY: a constant
``LCY_LOOKUP_KEY`` looked up through CURRENCY gives the base currency. Blocked ↔ state: blocked is
Retired, otherwise Active; a product that is not Active is blocked in BC.

The unit group comes from ``baseUnitOfMeasureId`` through UNIT OF MEASURE (legacy unit mode, see
``unit_of_measure.py``). Dataverse also needs ``defaultuomid``, the group's base unit: that is a
row *inside* the coupled group, not a coupling, so the use-case must set it after resolving the
group (reported as a model gap).

Not in the BC API v2.0 item: Unit Volume, Gross Weight, Vendor No., Vendor Item No.; the default
price list row (``pricelevelid``, "Business Central Default Price List") is a use-case duty.
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition
from shared.mappings.transforms import LCY_LOOKUP_KEY

__all__ = ["DEFINITION", "MAPPING"]

TO, BOTH = SyncDirection.TO_DATAVERSE, SyncDirection.BIDIRECTIONAL
SALES_INVENTORY = 1  # product.producttypecode

MAPPING = TableMapping(
    name="ITEM-PRODUCT",
    bc_entity_set="items",
    dataverse_entity_set="products",
    dataverse_key="productid",
    direction=BOTH,
    bc_name_field="number",
    dataverse_name_field="productnumber",
    sync_only_coupled=True,
    bc_filter="blocked eq false",
    dataverse_filter=f"producttypecode eq {SALES_INVENTORY} and statecode eq 0",
    dependencies=("UNIT OF MEASURE",),
    fields=(
        FieldMapping("number", "productnumber", TO, match=MatchRule()),  # the item no. is the product id
        FieldMapping("displayName", "name", BOTH),
        FieldMapping("unitPrice", "price", TO, transform="non_negative"),
        FieldMapping("unitCost", "standardcost", TO),
        FieldMapping("unitCost", "currentcost", TO),
        FieldMapping("inventory", "quantityonhand", TO, transform="non_negative"),
        FieldMapping("baseUnitOfMeasureId", "defaultuomscheduleid", BOTH, lookup="UNIT OF MEASURE"),
        FieldMapping("blocked", "statecode", BOTH, transform="item_blocked_product_state"),
        FieldMapping("blocked", "statuscode", TO, transform="item_blocked_product_status"),
        FieldMapping(None, "transactioncurrencyid", TO, constant=LCY_LOOKUP_KEY, lookup="CURRENCY"),
    ),
    dataverse_insert_defaults=(
        ("producttypecode", SALES_INVENTORY),
        ("quantitydecimal", 2),
        ("productstructure", 1),
    ),
    bc_insert_defaults=(("type", "Inventory"),),
    notes=(
        "Not in BC API v2.0 items: Unit Volume, Gross Weight, Vendor No., Vendor Item No.",
        "defaultuomid (the unit group's base unit) and the default price list row are set by the use-case.",
        "The write-in product item is excluded by the use-case (a setting), not by a filter.",
    ),
)

DEFINITION = MappingDefinition(MAPPING)
