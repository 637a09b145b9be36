"""UNIT OF MEASURE: BC ``unitsOfMeasure`` → Dataverse ``uomschedules`` (the built-in's legacy UoM mode).

Why this and not the unit-group trio (UNIT GROUP / ITEM UOM / RESOURCE UOM): unit-group mode maps
BC's *Item Unit of Measure* (code + quantity per unit) to Dataverse units, and the BC API v2.0
exposes no item units of measure (an item says only its ``baseUnitOfMeasureId``) and no
resources. What it does expose, ``unitsOfMeasure``, is exactly what the legacy mapping needs:
one unit group per BC unit, named ``NAV <code>``, whose base unit is the code.

Match-based coupling on the group name finds an existing ``NAV <code>`` group, the built-in's
auto-match.
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition

__all__ = ["DEFINITION", "MAPPING"]

TO = SyncDirection.TO_DATAVERSE

MAPPING = TableMapping(
    name="UNIT OF MEASURE",
    bc_entity_set="unitsOfMeasure",
    dataverse_entity_set="uomschedules",
    dataverse_key="uomscheduleid",
    direction=TO,
    bc_name_field="code",
    dataverse_name_field="name",
    sync_only_coupled=True,
    sync_after_match_coupling=True,
    create_new_if_no_match=True,
    fields=(
        FieldMapping("code", "name", TO, transform="uom_schedule_name", match=MatchRule()),
        FieldMapping("code", "baseuomname", TO),
    ),
    notes=(
        "Legacy unit mode: BC API v2.0 has no item/resource units of measure for the unit-group trio.",
        "baseuomname cannot be updated in Dataverse: renaming a BC unit code fails that record.",
        "The built-in's checks on the group's shape (one active unit, quantity 1) are not enforced here.",
    ),
)

DEFINITION = MappingDefinition(MAPPING)
