"""RESOURCE-PRODUCT: BC Resource ↔ Dataverse ``products`` of type Services (behaviour reference §1.4).

Defined but **unavailable**: the BC API v2.0 has no resource entity (sales document lines can
name a resource by number, ``lineType`` "Resource", but resources themselves cannot be read or
written). The BC field names below are those a custom API page ``resources`` would have in the
v2.0 style; with such a page the mapping works unchanged. Until then the registry keeps it off
and refuses to enable it.
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition
from shared.mappings.transforms import LCY_LOOKUP_KEY

__all__ = ["DEFINITION", "MAPPING"]

TO, BOTH = SyncDirection.TO_DATAVERSE, SyncDirection.BIDIRECTIONAL
SERVICES = 3  # product.producttypecode

MAPPING = TableMapping(
    name="RESOURCE-PRODUCT",
    bc_entity_set="resources",
    dataverse_entity_set="products",
    dataverse_key="productid",
    direction=BOTH,
    bc_name_field="number",
    dataverse_name_field="productnumber",
    sync_only_coupled=True,
    bc_filter="blocked eq false",
    dataverse_filter=f"producttypecode eq {SERVICES} and statecode eq 0",
    dependencies=("UNIT OF MEASURE",),
    fields=(
        FieldMapping("number", "productnumber", TO),
        FieldMapping("displayName", "name", BOTH),
        FieldMapping("unitPrice", "price", TO, transform="non_negative"),
        FieldMapping("unitCost", "standardcost", TO),
        FieldMapping("unitCost", "currentcost", TO),
        FieldMapping("capacity", "quantityonhand", TO, transform="non_negative"),
        FieldMapping("blocked", "statecode", BOTH, transform="item_blocked_product_state"),
        FieldMapping("blocked", "statuscode", TO, transform="item_blocked_product_status"),
        FieldMapping(None, "transactioncurrencyid", TO, constant=LCY_LOOKUP_KEY, lookup="CURRENCY"),
    ),
    dataverse_insert_defaults=(("producttypecode", SERVICES), ("quantitydecimal", 2), ("productstructure", 1)),
    notes=("Unavailable: BC API v2.0 has no resources entity.",),
)

DEFINITION = MappingDefinition(
    MAPPING, unavailable_reason="BC API v2.0 has no resource entity (resources); a custom API page is needed."
)
