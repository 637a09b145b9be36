"""Every default mapping speaks the APIs' real names: checked against the emulators' schemas, no I/O.

The BC emulator's schema follows Microsoft Learn's API v2.0 reference and the Dataverse
emulator's entity model the Sales entity reference, so a misspelt field, a read-only target or a
lookup into the wrong table fails here rather than on the first sync.
"""

from __future__ import annotations

import re

import pytest

from emulators.business_central._schema import entity_by_set
from emulators.dataverse._entities import BY_ENTITY_SET, BY_LOGICAL_NAME
from emulators.dataverse._model import LOOKUP_TYPES, OPTION_TYPES, AttrType, EntityDefinition
from shared.domain.full_sync import dependency_order
from shared.domain.mapping import FieldMapping
from shared.domain.state import SyncDirection
from shared.mappings import registry
from shared.mappings._definition import ID_KEY, MappingDefinition
from shared.mappings._options import OPTION_KEY, OPTION_LABEL
from shared.mappings.transforms import TRANSFORMS

pytestmark = pytest.mark.unit

DEFINITIONS = registry.definitions()
BY_NAME = {d.name: d for d in DEFINITIONS}
TABLE_DEFINITIONS = [d for d in DEFINITIONS if d.option_set is None]
AVAILABLE = [d for d in DEFINITIONS if d.available]

# Real Dataverse attributes (Sales entity reference) the local emulator does not model. Fields and
# mappings that need one are declared but disabled; each entry must really be missing, so the
# list shrinks when the emulator grows and the field can be switched on.
NOT_EMULATED: set[tuple[str, str]] = set()
# Lookup keys that are no field of the referenced BC record but derived by the use-case.
DERIVED_LOOKUP_KEYS = {"companyContactNumber"}  # company contact no. → customer, via contactsInformation

_FILTER_NAME = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+(?:eq|ne|gt|ge|lt|le)\s")


def _filter_names(odata_filter: str | None) -> set[str]:
    return set(_FILTER_NAME.findall(odata_filter or ""))


def _ids(definition: MappingDefinition) -> str:
    return definition.name


def _dataverse_entity(definition: MappingDefinition) -> EntityDefinition:
    if definition.option_set is not None:
        return BY_LOGICAL_NAME[definition.option_set.entity]
    entity = BY_ENTITY_SET.get(definition.mapping.dataverse_entity_set)
    assert entity is not None, f"{definition.name}: no Dataverse entity set {definition.mapping.dataverse_entity_set}"
    return entity


def _emulated(entity: EntityDefinition, attribute: str) -> bool:
    name = attribute[1:-6] if attribute.startswith("_") and attribute.endswith("_value") else attribute
    return name in entity.attributes


def test_names_are_unique_and_in_the_builtins_prioritised_order() -> None:
    names = [d.name for d in DEFINITIONS]
    assert len(names) == len(set(names))
    assert names[:7] == [
        "SALESPEOPLE",
        "CURRENCY",
        "UNIT OF MEASURE",
        "CUSTOMER",
        "CONTACT",
        "ITEM-PRODUCT",
        "RESOURCE-PRODUCT",
    ]


def test_not_emulated_entries_are_really_missing_from_the_emulator() -> None:
    for entity, attribute in NOT_EMULATED:
        assert attribute not in BY_LOGICAL_NAME[entity].attributes, f"{entity}.{attribute} is emulated now"


@pytest.mark.parametrize("definition", [d for d in DEFINITIONS if not d.available], ids=_ids)
def test_unavailable_mappings_really_have_no_bc_api_v2_entity(definition: MappingDefinition) -> None:
    assert entity_by_set(definition.mapping.bc_entity_set) is None
    assert definition.unavailable_reason
    assert not definition.active


@pytest.mark.parametrize("definition", AVAILABLE, ids=_ids)
def test_bc_fields_exist_in_the_bc_api_entity(definition: MappingDefinition) -> None:
    mapping = definition.mapping
    entity = entity_by_set(mapping.bc_entity_set)
    assert entity is not None, f"{mapping.name}: BC API v2.0 has no entity set {mapping.bc_entity_set}"
    for name in (mapping.bc_key, mapping.bc_modified_field, mapping.bc_name_field):
        assert entity.get_field(name) is not None, f"{mapping.name}: {name}"
    for name in _filter_names(mapping.bc_filter):
        assert entity.get_field(name) is not None, f"{mapping.name}: filter on unknown field {name}"
    for name, _ in mapping.bc_insert_defaults:
        field = entity.get_field(name)
        assert field is not None and not field.read_only, f"{mapping.name}: insert default {name}"
    for field_mapping in mapping.fields:
        if field_mapping.bc_field is None:
            continue
        field = entity.get_field(field_mapping.bc_field)
        assert field is not None, f"{mapping.name}: BC field {field_mapping.bc_field} not in {mapping.bc_entity_set}"
        if field_mapping.flows(SyncDirection.FROM_DATAVERSE):
            assert not field.read_only, f"{mapping.name}: writes read-only BC field {field_mapping.bc_field}"


@pytest.mark.parametrize("definition", TABLE_DEFINITIONS, ids=_ids)
def test_dataverse_attributes_exist_in_the_entity_model(definition: MappingDefinition) -> None:
    mapping = definition.mapping
    entity = _dataverse_entity(definition)
    assert mapping.dataverse_key == entity.primary_id
    assert _emulated(entity, mapping.dataverse_modified_field)
    assert _emulated(entity, mapping.dataverse_name_field)
    for name in _filter_names(mapping.dataverse_filter):
        assert _emulated(entity, name), f"{mapping.name}: Dataverse filter on unknown attribute {name}"
    for name, value in mapping.dataverse_insert_defaults:
        attribute = entity.attributes.get(name)
        assert attribute is not None and attribute.create, f"{mapping.name}: insert default {name}"
        if attribute.type in OPTION_TYPES:
            assert value in attribute.options, f"{mapping.name}: {name}={value} is no option"
    for field_mapping in mapping.fields:
        _check_dataverse_field(definition, entity, field_mapping)


def _check_dataverse_field(definition: MappingDefinition, entity: EntityDefinition, field: FieldMapping) -> None:
    name = field.dataverse_field
    if name is None:
        return
    label = f"{definition.name}: {entity.logical_name}.{name}"
    attribute = entity.attributes.get(name)
    if attribute is None:
        assert (entity.logical_name, name) in NOT_EMULATED, f"{label} is no attribute"
        assert not field.enabled, f"{label} is not emulated, so it must be disabled by default"
        return
    if field.flows(SyncDirection.TO_DATAVERSE):
        assert attribute.create or attribute.update, f"{label} is read-only"
        if field.constant is not None and field.lookup is None and attribute.type in OPTION_TYPES:
            assert field.constant in attribute.options, f"{label}: constant {field.constant} is no option"


@pytest.mark.parametrize("definition", [d for d in DEFINITIONS if d.option_set is not None], ids=_ids)
def test_option_mappings_point_at_a_picklist(definition: MappingDefinition) -> None:
    option_set = definition.option_set
    assert option_set is not None
    mapping = definition.mapping
    assert mapping.direction is not SyncDirection.BIDIRECTIONAL
    assert mapping.dataverse_entity_set == f"{option_set.entity}.{option_set.attribute}"
    assert mapping.dataverse_key == OPTION_KEY
    assert {f.dataverse_field for f in mapping.fields} <= {OPTION_KEY, OPTION_LABEL}
    assert mapping.match_fields(), "option mappings couple by matching the code"
    attribute = BY_LOGICAL_NAME[option_set.entity].attributes.get(option_set.attribute)
    if attribute is None:
        assert (option_set.entity, option_set.attribute) in NOT_EMULATED
        assert not definition.active
    else:
        assert attribute.type is AttrType.PICKLIST


@pytest.mark.parametrize("definition", DEFINITIONS, ids=_ids)
def test_lookups_name_mappings_of_the_right_table(definition: MappingDefinition) -> None:
    for field in definition.mapping.fields:
        if field.lookup is None:
            continue
        assert field.lookup in BY_NAME, f"{definition.name}: lookup {field.lookup} is no mapping"
        referenced = BY_NAME[field.lookup]
        key = definition.lookup_key(field.bc_field) if field.bc_field else ID_KEY
        if key not in DERIVED_LOOKUP_KEYS and referenced.available:
            bc_entity = entity_by_set(referenced.mapping.bc_entity_set)
            assert bc_entity is not None and bc_entity.get_field(key) is not None, f"{definition.name}: key {key}"
        if definition.option_set is not None or field.dataverse_field is None:
            continue
        attribute = _dataverse_entity(definition).attributes.get(field.dataverse_field)
        if attribute is None:
            continue  # a not-emulated, disabled field (checked above)
        if referenced.option_set is not None:
            assert attribute.type is AttrType.PICKLIST
            assert attribute.name == referenced.option_set.attribute
        else:
            assert attribute.type in LOOKUP_TYPES, f"{definition.name}: {attribute.name} is no lookup"
            target = _dataverse_entity(referenced).logical_name
            assert target in attribute.targets, f"{definition.name}: {attribute.name} cannot point at {target}"


@pytest.mark.parametrize("definition", DEFINITIONS, ids=_ids)
def test_transforms_and_dependencies_exist(definition: MappingDefinition) -> None:
    for field in definition.mapping.fields:
        assert field.transform is None or field.transform in TRANSFORMS
    for dependency in definition.mapping.dependencies:
        assert dependency in BY_NAME


def test_dependencies_form_no_cycle_and_order_as_the_builtin() -> None:
    order = [m.name for m in dependency_order(d.mapping for d in DEFINITIONS)]
    for definition in DEFINITIONS:
        for dependency in definition.mapping.dependencies:
            assert order.index(dependency) < order.index(definition.name)
    assert order.index("SALESPEOPLE") < order.index("CUSTOMER") < order.index("CONTACT")
    assert order.index("UNIT OF MEASURE") < order.index("ITEM-PRODUCT")
    assert order.index("PLHEADER-PRICE") < order.index("PLLINE-PRODPRICE")


def test_every_bidirectional_or_one_way_mapping_has_fields_for_its_directions() -> None:
    for definition in DEFINITIONS:
        mapping = definition.mapping
        for direction in (SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE):
            if mapping.allows(direction):
                assert mapping.fields_for(direction), f"{mapping.name} {direction}"
