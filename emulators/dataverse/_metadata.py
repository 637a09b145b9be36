"""``EntityDefinitions``: the metadata clients read to resolve set names, keys and attributes.

Built once from the definitions as plain dicts, then queried with the shared OData module like any
other collection (``$select``, ``$filter``, ``$expand=Keys,Attributes`` with nested options).
"""

from __future__ import annotations

import uuid
from typing import Any

from ._entities import DEFINITIONS
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
