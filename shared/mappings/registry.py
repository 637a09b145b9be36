"""The default integration table mappings, in the built-in's prioritised order, and their overrides.

``default_mappings()`` is what the connector runs: the active mappings (enabled, and servable by
the BC API v2.0), every dependency before its dependents' priority peers as the built-in lists
them (behaviour reference §1.5: systemuser → currency → unit of measure → customer → contact →
item → resource → the rest). ``definitions()`` has every defined mapping, active or not, for the
HTTP view.

Configuration changes mappings without code through one JSON document, the proposed setting
``MAPPING_OVERRIDES`` (the JSON itself, or a path to a file holding it)::

    {"mappings": {
        "CUSTOMER": {
            "direction": "bidirectional",            # toDataverse | fromDataverse | bidirectional
            "enabled": true,
            "syncOnlyCoupled": true,
            "bcFilter": "blocked eq ' '",            # null removes the filter
            "dataverseFilter": "statecode eq 0",
            "dependencies": ["SALESPEOPLE", "CURRENCY"],
            "updateConflict": "GetUpdateFromDataverse",   # None | SendUpdateToDataverse | …
            "deletionConflict": "RemoveCoupling",          # None | RestoreRecords | RemoveCoupling
            "syncAfterMatchCoupling": true,
            "createNewIfNoMatch": false,
            "fields": [
                {"bcField": "shipmentMethodId", "enabled": true},
                {"bcField": "email", "dataverseField": "emailaddress1", "direction": "toDataverse",
                 "match": {"priority": 1, "caseSensitive": false}},
                {"add": true, "bcField": "number", "dataverseField": "accountnumber",
                 "direction": "toDataverse"}
            ]}}}

A field entry names an existing field by ``bcField`` and/or ``dataverseField`` (it must match
exactly one) and changes ``direction``, ``enabled``, ``constant``, ``transform``, ``lookup``,
``notNull``, ``clearOnFailedSync`` or ``match`` (an object, or null to stop matching on it);
with ``"add": true`` it declares a new field mapping instead. Every override is validated as the
built-in validates its mapping pages; anything wrong is a ``ConfigurationError`` naming the
mapping and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from shared.domain.full_sync import dependency_order
from shared.domain.mapping import (
    DeletionConflictResolution,
    FieldMapping,
    MatchRule,
    TableMapping,
    UpdateConflictResolution,
)
from shared.domain.state import SyncDirection
from shared.errors import ConfigurationError, PermanentError
from shared.mappings import (
    contact,
    currency,
    customer,
    item_product,
    payment_terms,
    price_list_header,
    price_list_line,
    resource_product,
    salespeople,
    shipment_method,
    shipping_agent,
    unit_of_measure,
)
from shared.mappings._definition import ID_KEY, MappingDefinition, OptionSetRef
from shared.mappings._options import OPTION_BIDIRECTIONAL_MESSAGE
from shared.mappings.transforms import TRANSFORMS

__all__ = [
    "OVERRIDES_SETTING",
    "apply_overrides",
    "configured_mappings",
    "default_mappings",
    "definitions",
    "get_definition",
    "get_mapping",
    "load_overrides",
    "lookup_key",
    "mapping_as_json",
    "option_set_of",
]

OVERRIDES_SETTING: Final = "MAPPING_OVERRIDES"

# The built-in's prioritised order (behaviour reference §1.5, Sales layer), then the others.
_DEFAULTS: Final[tuple[MappingDefinition, ...]] = (
    salespeople.DEFINITION,
    currency.DEFINITION,
    unit_of_measure.DEFINITION,
    customer.DEFINITION,
    contact.DEFINITION,
    item_product.DEFINITION,
    resource_product.DEFINITION,
    payment_terms.DEFINITION,
    shipment_method.DEFINITION,
    shipping_agent.DEFINITION,
    price_list_header.DEFINITION,
    price_list_line.DEFINITION,
)

_MAPPING_KEYS: Final = frozenset(
    {
        "enabled",
        "direction",
        "syncOnlyCoupled",
        "bcFilter",
        "dataverseFilter",
        "dependencies",
        "updateConflict",
        "deletionConflict",
        "syncAfterMatchCoupling",
        "createNewIfNoMatch",
        "fields",
    }
)
# JSON flag → TableMapping attribute.
_MAPPING_FLAGS: Final = {
    "syncOnlyCoupled": "sync_only_coupled",
    "syncAfterMatchCoupling": "sync_after_match_coupling",
    "createNewIfNoMatch": "create_new_if_no_match",
}
_FIELD_KEYS: Final = frozenset(
    {
        "add",
        "bcField",
        "dataverseField",
        "direction",
        "enabled",
        "constant",
        "transform",
        "lookup",
        "notNull",
        "clearOnFailedSync",
        "match",
    }
)
_SETTABLE_FIELD_KEYS: Final = _FIELD_KEYS - {"add", "bcField", "dataverseField"}


# --------------------------------------------------------------------------------------------
# Reading the setting (the only I/O here) and looking mappings up


def load_overrides(raw: str | None) -> dict[str, Any]:
    """The override document from the ``MAPPING_OVERRIDES`` setting: JSON text, or a path to a JSON file.

    Raises:
        ConfigurationError: the file is missing or the text is not a JSON object.
    """
    if raw is None or not raw.strip():
        return {}
    text = raw.strip()
    if not text.startswith("{"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(
                f"{OVERRIDES_SETTING}: cannot read the override file {path}: {error.strerror or error}",
                code="InvalidMappingOverride",
            ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"{OVERRIDES_SETTING} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            code="InvalidMappingOverride",
        ) from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{OVERRIDES_SETTING} must be a JSON object", code="InvalidMappingOverride")
    return document


def definitions(overrides: Mapping[str, Any] | None = None) -> tuple[MappingDefinition, ...]:
    """Every defined mapping, active or not, with ``overrides`` applied, in prioritised order.

    Raises:
        ConfigurationError: an override is invalid.
    """
    return apply_overrides(_DEFAULTS, overrides or {})


def default_mappings(overrides: Mapping[str, Any] | None = None) -> tuple[TableMapping, ...]:
    """The mappings the connector runs (enabled and available), in the built-in's prioritised order.

    Raises:
        ConfigurationError: an override is invalid.
    """
    return tuple(d.mapping for d in definitions(overrides) if d.active)


def configured_mappings(raw_setting: str | None) -> tuple[TableMapping, ...]:
    """The active mappings with the ``MAPPING_OVERRIDES`` setting's value applied (JSON or a path).

    Raises:
        ConfigurationError: the setting cannot be read or an override is invalid.
    """
    return default_mappings(load_overrides(raw_setting))


def _default_definition(name: str) -> MappingDefinition | None:
    return next((d for d in _DEFAULTS if d.name == name), None)


def lookup_key(mapping_name: str, bc_field: str) -> str:
    """Which field of the referenced BC record a lookup field's value equals (``"id"`` unless a code).

    E.g. ``lookup_key("CUSTOMER", "salespersonCode") == "code"``: the customer names its
    salesperson by code, so the use-case keys ``LookupTable.to_dataverse["SALESPEOPLE"]`` by code.
    """
    definition = _default_definition(mapping_name.strip().upper())
    return definition.lookup_key(bc_field) if definition is not None else ID_KEY


def option_set_of(mapping_name: str) -> OptionSetRef | None:
    """The option set behind an option mapping (PAYMENT TERMS …), ``None`` for a table mapping."""
    definition = _default_definition(mapping_name.strip().upper())
    return definition.option_set if definition is not None else None


def get_definition(name: str, overrides: Mapping[str, Any] | None = None) -> MappingDefinition:
    """The mapping called ``name`` (case-insensitive), active or not.

    Raises:
        PermanentError: no mapping has that name (code ``UnknownMapping``).
        ConfigurationError: an override is invalid.
    """
    wanted = name.strip().upper()
    for definition in definitions(overrides):
        if definition.name == wanted:
            return definition
    known = ", ".join(d.name for d in _DEFAULTS)
    raise PermanentError(f"There is no integration table mapping '{name}'. Known: {known}.", code="UnknownMapping")


def get_mapping(name: str, overrides: Mapping[str, Any] | None = None) -> TableMapping:
    """The active mapping called ``name``.

    Raises:
        PermanentError: unknown (``UnknownMapping``) or not active (``MappingDisabled``, with why).
        ConfigurationError: an override is invalid.
    """
    definition = get_definition(name, overrides)
    if not definition.available:
        raise PermanentError(
            f"The mapping {definition.name} is not available: {definition.unavailable_reason}", code="MappingDisabled"
        )
    if not definition.enabled:
        raise PermanentError(
            f"The mapping {definition.name} is disabled; enable it in {OVERRIDES_SETTING}.", code="MappingDisabled"
        )
    return definition.mapping


# --------------------------------------------------------------------------------------------
# Overrides


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"{OVERRIDES_SETTING}: {message}", code="InvalidMappingOverride")


def apply_overrides(
    defaults: Iterable[MappingDefinition], overrides: Mapping[str, Any]
) -> tuple[MappingDefinition, ...]:
    """``defaults`` with the override document applied and the result validated.

    Raises:
        ConfigurationError: the document is malformed, names an unknown mapping or field, or leaves
            a mapping the built-in would refuse (message names the mapping and the field).
    """
    result = list(defaults)
    unknown_top = set(overrides) - {"mappings"}
    if unknown_top:
        raise _fail(f"unknown top-level key(s) {sorted(unknown_top)}; expected {{'mappings': {{…}}}}")
    per_mapping = overrides.get("mappings", {})
    if not isinstance(per_mapping, dict):
        raise _fail("'mappings' must be an object keyed by mapping name")
    index = {d.name: i for i, d in enumerate(result)}
    for raw_name, changes in per_mapping.items():
        name = str(raw_name).strip().upper()
        if name not in index:
            raise _fail(f"there is no mapping '{raw_name}' (known: {', '.join(index)})")
        if not isinstance(changes, dict):
            raise _fail(f"mapping '{name}': the override must be an object")
        result[index[name]] = _override_mapping(result[index[name]], changes)
    _validate(result)
    return tuple(result)


def _enum_value(enum_type: Callable[[str], Any], value: Any, *, where: str, choices: Iterable[str]) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        raise _fail(f"{where}: {value!r} is not one of {', '.join(choices)}") from None


def _typed(value: Any, kind: type | tuple[type, ...], *, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise _fail(f"{where}: {what}")
    return value


def _override_mapping(definition: MappingDefinition, changes: Mapping[str, Any]) -> MappingDefinition:
    name = definition.name
    where = f"mapping '{name}'"
    unknown = set(changes) - _MAPPING_KEYS
    if unknown:
        raise _fail(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_MAPPING_KEYS)}")
    mapping = definition.mapping
    updates: dict[str, Any] = {}
    directions = [d.value for d in SyncDirection]
    if "direction" in changes:
        updates["direction"] = _enum_value(SyncDirection, changes["direction"], where=where, choices=directions)
    for key, attribute in _MAPPING_FLAGS.items():
        if key in changes:
            updates[attribute] = _typed(changes[key], bool, where=where, what=f"'{key}' must be true or false")
    for key, attribute in (("bcFilter", "bc_filter"), ("dataverseFilter", "dataverse_filter")):
        if key in changes:
            value = changes[key]
            _typed(value, (str, type(None)), where=where, what=f"'{key}' must be an OData $filter string or null")
            updates[attribute] = value.strip() or None if isinstance(value, str) else None
    if "dependencies" in changes:
        value = _typed(changes["dependencies"], list, where=where, what="'dependencies' must be a list of names")
        updates["dependencies"] = tuple(str(v).strip().upper() for v in value)
    if "updateConflict" in changes:
        updates["update_conflict"] = _enum_value(
            UpdateConflictResolution,
            changes["updateConflict"],
            where=where,
            choices=[r.value for r in UpdateConflictResolution],
        )
    if "deletionConflict" in changes:
        updates["deletion_conflict"] = _enum_value(
            DeletionConflictResolution,
            changes["deletionConflict"],
            where=where,
            choices=[r.value for r in DeletionConflictResolution],
        )
    if "fields" in changes:
        entries = _typed(changes["fields"], list, where=where, what="'fields' must be a list of field overrides")
        updates["fields"] = _override_fields(name, mapping.fields, entries)
    enabled = definition.enabled
    if "enabled" in changes:
        enabled = _typed(changes["enabled"], bool, where=where, what="'enabled' must be true or false")
        if enabled and not definition.available:
            raise _fail(f"{where} cannot be enabled: {definition.unavailable_reason}")
    return replace(definition, mapping=replace(mapping, **updates), enabled=enabled)


def _field_label(field: FieldMapping) -> str:
    return f"'{field.bc_field or '(constant)'}' → '{field.dataverse_field or '(constant)'}'"


def _override_fields(
    mapping_name: str, fields: tuple[FieldMapping, ...], entries: list[Any]
) -> tuple[FieldMapping, ...]:
    result = list(fields)
    for raw_entry in entries:
        where = f"mapping '{mapping_name}'"
        entry = _typed(raw_entry, dict, where=where, what="each field override must be an object")
        unknown = set(entry) - _FIELD_KEYS
        if unknown:
            raise _fail(f"{where}: unknown field key(s) {sorted(unknown)}; allowed: {sorted(_FIELD_KEYS)}")
        bc_field, dataverse_field = entry.get("bcField"), entry.get("dataverseField")
        label = f"'{bc_field or '(constant)'}' → '{dataverse_field or '(constant)'}'"
        if entry.get("add", False):
            if bc_field is None and dataverse_field is None:
                raise _fail(f"{where}: an added field needs a bcField or a dataverseField")
            if any(f.bc_field == bc_field and f.dataverse_field == dataverse_field for f in result):
                raise _fail(f"{where}, field {label}: already mapped; change it instead of adding it")
            if "direction" not in entry:
                raise _fail(f"{where}, field {label}: an added field needs a direction")
            base = FieldMapping(bc_field, dataverse_field, SyncDirection.TO_DATAVERSE)
            result.append(_apply_field_changes(mapping_name, base, entry))
            continue
        if bc_field is None and dataverse_field is None:
            raise _fail(f"{where}: a field override names its field by bcField and/or dataverseField")
        matches = [
            i
            for i, f in enumerate(result)
            if bc_field in (None, f.bc_field) and dataverse_field in (None, f.dataverse_field)
        ]
        if len(matches) != 1:
            found = "no field" if not matches else f"{len(matches)} fields"
            raise _fail(f"{where}, field {label}: matches {found}; name it by both bcField and dataverseField")
        result[matches[0]] = _apply_field_changes(mapping_name, result[matches[0]], entry)
    return tuple(result)


def _apply_field_changes(mapping_name: str, field: FieldMapping, entry: Mapping[str, Any]) -> FieldMapping:
    where = f"mapping '{mapping_name}', field {_field_label(field)}"
    updates: dict[str, Any] = {}
    for key in _SETTABLE_FIELD_KEYS & set(entry):
        value = entry[key]
        if key == "direction":
            updates["direction"] = _enum_value(
                SyncDirection, value, where=where, choices=[d.value for d in SyncDirection]
            )
        elif key in {"enabled", "notNull", "clearOnFailedSync"}:
            attribute = {"enabled": "enabled", "notNull": "not_null", "clearOnFailedSync": "clear_on_failed_sync"}[key]
            updates[attribute] = _typed(value, bool, where=where, what=f"'{key}' must be true or false")
        elif key == "constant":
            updates["constant"] = _typed(
                value, (str, int, float, bool, type(None)), where=where, what="'constant' must be a JSON scalar"
            )
        elif key in {"transform", "lookup"}:
            _typed(value, (str, type(None)), where=where, what=f"'{key}' must be a name or null")
            updates[key] = value.strip().upper() if key == "lookup" and isinstance(value, str) else value
        elif key == "match":
            updates["match"] = _match_rule(value, where=where)
    return replace(field, **updates)


def _match_rule(value: Any, *, where: str) -> MatchRule | None:
    if value is None or value is False:
        return None
    if value is True:
        return MatchRule()
    value = _typed(value, dict, where=where, what="'match' must be an object, true, or null")
    unknown = set(value) - {"priority", "caseSensitive"}
    if unknown:
        raise _fail(f"{where}: unknown match key(s) {sorted(unknown)}; allowed: ['caseSensitive', 'priority']")
    priority = value.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
        raise _fail(f"{where}: match 'priority' must be a whole number ≥ 0")
    case_sensitive = _typed(
        value.get("caseSensitive", False), bool, where=where, what="match 'caseSensitive' must be true or false"
    )
    return MatchRule(priority=priority, case_sensitive=case_sensitive)


# --------------------------------------------------------------------------------------------
# Validation: what the built-in's mapping pages refuse


def _direction_words(direction: SyncDirection) -> str:
    return {
        SyncDirection.TO_DATAVERSE: "ToIntegrationTable (toDataverse)",
        SyncDirection.FROM_DATAVERSE: "FromIntegrationTable (fromDataverse)",
        SyncDirection.BIDIRECTIONAL: "Bidirectional",
    }[direction]


def _validate(all_definitions: list[MappingDefinition]) -> None:
    names = {d.name for d in all_definitions}
    for definition in all_definitions:
        mapping = definition.mapping
        where = f"mapping '{mapping.name}'"
        if definition.option_set is not None and mapping.direction is SyncDirection.BIDIRECTIONAL:
            raise _fail(f"{where}: {OPTION_BIDIRECTIONAL_MESSAGE}")
        for direction in (SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE):
            if mapping.allows(direction) and not mapping.fields_for(direction):
                raise _fail(
                    f"{where}: You must set the direction of at least one enabled integration field mapping to "
                    f"'{_direction_words(direction)}'."
                )
        for dependency in mapping.dependencies:
            if dependency not in names:
                raise _fail(f"{where}: dependency '{dependency}' is not a mapping")
        for field in mapping.fields:
            _validate_field(mapping, field, names)
    try:
        dependency_order(d.mapping for d in all_definitions)
    except ValueError as error:
        raise _fail(str(error)) from None


def _validate_field(mapping: TableMapping, field: FieldMapping, names: set[str]) -> None:
    where = f"mapping '{mapping.name}', field {_field_label(field)}"
    if field.bc_field is None and field.dataverse_field is None:
        raise _fail(f"{where}: a field mapping needs a BC field or a Dataverse attribute")
    if field.transform is not None and field.transform not in TRANSFORMS:
        raise _fail(f"{where}: unknown transform '{field.transform}' (known: {', '.join(sorted(TRANSFORMS))})")
    if field.lookup is not None and field.lookup not in names:
        raise _fail(f"{where}: lookup '{field.lookup}' is not a mapping")
    for direction in (SyncDirection.TO_DATAVERSE, SyncDirection.FROM_DATAVERSE):
        if field.flows(direction) and field.target_field(direction) is None:
            side = "Dataverse attribute" if direction is SyncDirection.TO_DATAVERSE else "BC field"
            raise _fail(f"{where}: it flows {direction.value} but has no {side} to write")
    if field.clear_on_failed_sync and field.lookup is None:
        raise _fail(f"{where}: clearOnFailedSync applies to lookups only")
    if field.not_null and field.lookup is None:
        raise _fail(f"{where}: notNull applies to lookups only")


# --------------------------------------------------------------------------------------------
# The HTTP view


def _field_as_json(field: FieldMapping, definition: MappingDefinition | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bcField": field.bc_field,
        "dataverseField": field.dataverse_field,
        "direction": field.direction.value,
        "enabled": field.enabled,
        "constant": field.constant,
        "transform": field.transform,
        "lookup": field.lookup,
        "notNull": field.not_null,
        "clearOnFailedSync": field.clear_on_failed_sync,
        "match": None
        if field.match is None
        else {"priority": field.match.priority, "caseSensitive": field.match.case_sensitive},
    }
    if field.lookup is not None and field.bc_field is not None and definition is not None:
        data["lookupKey"] = definition.lookup_key(field.bc_field)
    return data


def mapping_as_json(item: TableMapping | MappingDefinition) -> dict[str, Any]:
    """A mapping as the HTTP view shows it (``GET /api/mappings``); pass a definition for its status."""
    # Option sets and lookup keys are not overridable, so a bare TableMapping takes them from the
    # default definition of the same name; only a definition knows whether it is enabled.
    mapping = item.mapping if isinstance(item, MappingDefinition) else item
    definition = item if isinstance(item, MappingDefinition) else _default_definition(mapping.name)
    data: dict[str, Any] = {
        "name": mapping.name,
        "kind": "option" if definition is not None and definition.option_set is not None else "table",
        "bcEntitySet": mapping.bc_entity_set,
        "bcKey": mapping.bc_key,
        "bcModifiedField": mapping.bc_modified_field,
        "bcNameField": mapping.bc_name_field,
        "dataverseEntitySet": mapping.dataverse_entity_set,
        "dataverseKey": mapping.dataverse_key,
        "dataverseModifiedField": mapping.dataverse_modified_field or None,
        "dataverseNameField": mapping.dataverse_name_field,
        "direction": mapping.direction.value,
        "syncOnlyCoupled": mapping.sync_only_coupled,
        "bcFilter": mapping.bc_filter,
        "dataverseFilter": mapping.dataverse_filter,
        "dependencies": list(mapping.dependencies),
        "updateConflict": mapping.update_conflict.value,
        "deletionConflict": mapping.deletion_conflict.value,
        "syncAfterMatchCoupling": mapping.sync_after_match_coupling,
        "createNewIfNoMatch": mapping.create_new_if_no_match,
        "dataverseInsertDefaults": dict(mapping.dataverse_insert_defaults),
        "bcInsertDefaults": dict(mapping.bc_insert_defaults),
        "fields": [_field_as_json(f, definition) for f in mapping.fields],
        "notes": list(mapping.notes),
    }
    if isinstance(item, MappingDefinition):
        data["enabled"] = item.active
    if definition is not None:
        data["unavailableReason"] = definition.unavailable_reason
        data["optionSet"] = (
            None
            if definition.option_set is None
            else {"entity": definition.option_set.entity, "attribute": definition.option_set.attribute}
        )
    return data
