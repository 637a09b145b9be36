"""``EntityDefinitions``: the metadata clients read to resolve set names, keys and attributes.

Built once from the definitions as plain dicts, then queried with the shared OData module like any
other collection (``$select``, ``$filter``, ``$expand=Keys,Attributes`` with nested options).
Option sets are the exception: ``InsertOptionValue`` changes them, so ``with_option_set`` builds an
attribute's ``OptionSet`` per request from the live options.
"""

from __future__ import annotations

import uuid
from typing import Any

from ._entities import BY_LOGICAL_NAME, DEFINITIONS
from ._model import AttrType, EntityDefinition

_NAMESPACE = uuid.UUID("6f50f552-e9f9-4c98-9b1e-d0a4a1f3c0de")

_ATTRIBUTE_ODATA_TYPES = {
    AttrType.STRING: "StringAttributeMetadata",
    AttrType.MEMO: "MemoAttributeMetadata",
    AttrType.INTEGER: "IntegerAttributeMetadata",
    AttrType.BIGINT: "BigIntAttributeMetadata",
    AttrType.DECIMAL: "DecimalAttributeMetadata",
    AttrType.MONEY: "MoneyAttributeMetadata",
    AttrType.BOOLEAN: "BooleanAttributeMetadata",
    AttrType.DATETIME: "DateTimeAttributeMetadata",
    AttrType.PICKLIST: "PicklistAttributeMetadata",
    AttrType.STATE: "StateAttributeMetadata",
    AttrType.STATUS: "StatusAttributeMetadata",
    AttrType.LOOKUP: "LookupAttributeMetadata",
    AttrType.CUSTOMER: "LookupAttributeMetadata",
    AttrType.OWNER: "LookupAttributeMetadata",
    AttrType.UNIQUEIDENTIFIER: "UniqueIdentifierAttributeMetadata",
    AttrType.ENTITYNAME: "EntityNameAttributeMetadata",
}


def _label(text: str) -> dict[str, Any]:
    label = {"Label": text, "LanguageCode": 1033}
    return {"LocalizedLabels": [label], "UserLocalizedLabel": label}


def _entity(definition: EntityDefinition) -> dict[str, Any]:
    logical = definition.logical_name
    attributes = []
    for attribute in definition.attributes.values():
        attributes.append(
            {
                "@odata.type": f"#Microsoft.Dynamics.CRM.{_ATTRIBUTE_ODATA_TYPES[attribute.type]}",
                "MetadataId": str(uuid.uuid5(_NAMESPACE, f"{logical}.{attribute.name}")),
                "LogicalName": attribute.name,
                "SchemaName": attribute.name,
                "EntityLogicalName": logical,
                "AttributeType": attribute.type.value,
                "MaxLength": attribute.max_length,
                "IsValidForCreate": attribute.create,
                "IsValidForUpdate": attribute.update,
                "IsValidForRead": True,
                "IsPrimaryId": attribute.name == definition.primary_id,
                "IsPrimaryName": attribute.name == definition.primary_name,
                "Targets": list(attribute.targets) if attribute.targets else None,
                "MinValue": attribute.min_value,
                "MaxValue": attribute.max_value,
            }
        )
    keys = [
        {
            "MetadataId": str(uuid.uuid5(_NAMESPACE, f"{logical}.key.{'.'.join(key)}")),
            "LogicalName": f"{logical}_{'_'.join(key)}_key",
            "SchemaName": f"{logical}_{'_'.join(key)}_key",
            "EntityLogicalName": logical,
            "KeyAttributes": list(key),
            "EntityKeyIndexStatus": "Active",
        }
        for key in definition.alternate_keys
    ]
    return {
        "MetadataId": str(uuid.uuid5(_NAMESPACE, logical)),
        "LogicalName": logical,
        "SchemaName": definition.schema_name,
        "EntitySetName": definition.entity_set,
        "LogicalCollectionName": definition.entity_set,
        "CollectionSchemaName": definition.entity_set,
        "PrimaryIdAttribute": definition.primary_id,
        "PrimaryNameAttribute": definition.primary_name,
        "ObjectTypeCode": definition.object_type_code,
        "ChangeTrackingEnabled": definition.change_tracking,
        "IsActivity": False,
        "IsCustomEntity": logical.startswith(("nav_", "bcbi_")),
        "OwnershipType": definition.ownership,
        "DisplayName": _label(definition.display_name or logical),
        "Keys": keys,
        "Attributes": attributes,
    }


ENTITY_METADATA: tuple[dict[str, Any], ...] = tuple(_entity(d) for d in DEFINITIONS)
NAVIGATIONS = frozenset({"Keys", "Attributes"})

# Single-valued navigations of option attributes; only reachable through a type cast segment
# (``Attributes(...)/Microsoft.Dynamics.CRM.PicklistAttributeMetadata``), as on the service.
ATTRIBUTE_NAVIGATIONS = frozenset({"OptionSet", "GlobalOptionSet"})
OPTION_CASTS = {
    f"Microsoft.Dynamics.CRM.{_ATTRIBUTE_ODATA_TYPES[kind]}": kind
    for kind in (AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS)
}
CASTS = frozenset(f"Microsoft.Dynamics.CRM.{name}" for name in set(_ATTRIBUTE_ODATA_TYPES.values()))


def _option_label(text: str, owner: str) -> dict[str, Any]:
    label = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": True,
        "MetadataId": str(uuid.uuid5(_NAMESPACE, f"{owner}.label")),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [label], "UserLocalizedLabel": label}


def with_option_set(logical: str, attribute_metadata: dict[str, Any]) -> dict[str, Any]:
    """The attribute's metadata plus its current local ``OptionSet`` (built per request: it can change)."""
    definition = BY_LOGICAL_NAME[logical]
    attribute = definition.attributes[attribute_metadata["LogicalName"]]
    name = f"{logical}_{attribute.name}"
    options: list[dict[str, Any]] = [
        {
            "Value": value,
            "Color": None,
            "IsManaged": True,
            "ExternalValue": "",
            "ParentValues": [],
            "Tag": None,
            "IsHidden": False,
            "MetadataId": None,
            "HasChanged": None,
            "Label": _option_label(label, f"{name}.{value}"),
            "Description": {"LocalizedLabels": [], "UserLocalizedLabel": None},
        }
        for value, label in attribute.options.items()
    ]
    option_set = {
        "MetadataId": str(uuid.uuid5(_NAMESPACE, f"{name}.optionset")),
        "HasChanged": None,
        "Name": name,
        "OptionSetType": attribute.type.value,
        "IsGlobal": False,
        "IsCustomOptionSet": False,
        "IsManaged": True,
        "DisplayName": _label(attribute.name),
        "Options": options,
    }
    return {**attribute_metadata, "OptionSet": option_set, "GlobalOptionSet": None}
