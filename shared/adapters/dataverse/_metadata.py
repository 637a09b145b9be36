"""Table metadata from ``EntityDefinitions``: logical name, primary key and lookups, cached per process.

A lookup is read as ``_<attribute>_value`` and written through a single-valued navigation
property (``<nav>@odata.bind``), one per target table for polymorphic lookups such as
``contact.parentcustomerid`` (``parentcustomerid_account`` / ``parentcustomerid_contact``). The
navigation names are case-sensitive and not derivable in general, so they are read from the
many-to-one relationships (``ReferencingAttribute``, ``ReferencedEntity``,
``ReferencingEntityNavigationPropertyName``) the way the SDKs do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import PermanentError
from shared.odata import string_literal

if TYPE_CHECKING:
    from shared.adapters.dataverse.client import DataverseWebApi

__all__ = ["Lookup", "LookupTarget", "MetadataCatalog", "TableMetadata"]

_RELATIONSHIPS = (
    "ManyToOneRelationships($select=ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName)"
)
_LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
# ``ownerid`` references the abstract ``owner`` table; rows bind to a user or a team.
_OWNER_TARGETS = ("systemuser", "team")
_NAMES_PER_REQUEST = 25  # keeps the EntityDefinitions filter URL short


@dataclass(frozen=True)
class LookupTarget:
    """One table a lookup can point at, and how to bind to it."""

    entity: str
    entity_set: str
    navigation: str


@dataclass(frozen=True)
class Lookup:
    """A lookup attribute and its target tables (more than one when it is polymorphic)."""

    attribute: str
    targets: tuple[LookupTarget, ...]

    def target(self, entity: str | None) -> LookupTarget:
        """The target to bind: the named table, or the only one.

        Raises:
            PermanentError: ``entity`` is not a target (``UnknownLookupTarget``), or none was named
                for a polymorphic lookup (``AmbiguousLookup``).
        """
        if entity is not None:
            for target in self.targets:
                # The logical name, or the entity set name a mapping knows the table by.
                if entity in (target.entity, target.entity_set):
                    return target
            raise PermanentError(
                f"Dataverse: {self.attribute} cannot point at a {entity} row "
                f"(targets: {', '.join(t.entity for t in self.targets)})",
                code="UnknownLookupTarget",
            )
        if len(self.targets) == 1 or self.targets[0].entity == _OWNER_TARGETS[0]:
            return self.targets[0]  # an owner without a type is a user, as in the SDKs
        raise PermanentError(
            f"Dataverse: {self.attribute} is polymorphic; name the target table in "
            f"'{self.attribute}@Microsoft.Dynamics.CRM.lookuplogicalname' "
            f"(one of: {', '.join(t.entity for t in self.targets)})",
            code="AmbiguousLookup",
        )


@dataclass(frozen=True)
class TableMetadata:
    """What the adapter needs to know about one table."""

    entity_set: str
    logical_name: str
    primary_key: str
    lookups: Mapping[str, Lookup] = field(default_factory=dict)

    def lookup_of_value_name(self, name: str) -> Lookup | None:
        """The lookup behind ``_x_value``, if ``name`` is one."""
        if name.startswith("_") and name.endswith("_value"):
            return self.lookups.get(name[1:-6])
        return None


class MetadataCatalog:
    """Loads table metadata on first use and keeps it for the life of the process."""

    def __init__(self, api: DataverseWebApi) -> None:
        self._api = api
        self._tables: dict[str, TableMetadata] = {}
        self._sets: dict[str, str] = {}  # logical name → entity set name
        self._relationships_readable = True
        self._lock = threading.Lock()

    def table(self, entity_set: str) -> TableMetadata:
        """Metadata of ``entity_set``, loaded once.

        Raises:
            PermanentError: no table has this entity set (``UnknownEntitySet``).
            ConfigurationError, RetriableError: the metadata could not be read.
        """
        with self._lock:  # one load per table even when parallel workers ask at once
            table = self._tables.get(entity_set)
            if table is None:
                table = self._load(entity_set)
                self._tables[entity_set] = table
            return table

    def _load(self, entity_set: str) -> TableMetadata:
        query = {
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute",
            "$filter": f"EntitySetName eq {string_literal(entity_set)}",
        }
        doing = f"reading the metadata of {entity_set}"
        entity: dict[str, Any] | None = None
        if self._relationships_readable:
            try:
                found = self._api.get_json(
                    "EntityDefinitions", params={**query, "$expand": _RELATIONSHIPS}, doing=doing
                )
                entity = _single(found, entity_set)
                references = _references_from_relationships(entity.get("ManyToOneRelationships") or [])
            except PermanentError as error:
                if error.code == "UnknownEntitySet":
                    raise
                self._relationships_readable = False  # ask once per process, not once per table
        if entity is None:
            # Stores without relationship metadata (the local emulator) still list lookup targets
            # on the attributes; navigation names then follow the platform's convention.
            attributes = "Attributes($select=LogicalName,AttributeType,Targets)"
            found = self._api.get_json("EntityDefinitions", params={**query, "$expand": attributes}, doing=doing)
            entity = _single(found, entity_set)
            references = _references_from_attributes(entity.get("Attributes") or [])
        logical_name = str(entity["LogicalName"])
        self._sets[logical_name] = entity_set
        self._resolve_sets({target for _, target, _ in references})
        by_attribute: dict[str, list[LookupTarget]] = {}
        for attribute, target, navigation in references:
            target_set = self._sets.get(target)
            if target_set is not None:  # tables without an entity set cannot be bound to
                by_attribute.setdefault(attribute, []).append(LookupTarget(target, target_set, navigation))
        return TableMetadata(
            entity_set=entity_set,
            logical_name=logical_name,
            primary_key=str(entity["PrimaryIdAttribute"]),
            lookups={name: Lookup(name, tuple(targets)) for name, targets in by_attribute.items()},
        )

    def _resolve_sets(self, logical_names: Iterable[str]) -> None:
        missing = sorted(set(logical_names) - set(self._sets))
        for start in range(0, len(missing), _NAMES_PER_REQUEST):
            names = missing[start : start + _NAMES_PER_REQUEST]
            found = self._api.get_json(
                "EntityDefinitions",
                params={
                    "$select": "LogicalName,EntitySetName",
                    "$filter": " or ".join(f"LogicalName eq {string_literal(n)}" for n in names),
                },
                doing="reading the entity set names of lookup targets",
            )
            for entity in found.get("value", []):
                if entity.get("EntitySetName"):
                    self._sets[str(entity["LogicalName"])] = str(entity["EntitySetName"])


def _single(found: dict[str, Any], entity_set: str) -> dict[str, Any]:
    values = found.get("value") or []
    if not values:
        raise PermanentError(f"Dataverse: no table has the entity set name {entity_set!r}", code="UnknownEntitySet")
    entity: dict[str, Any] = values[0]
    return entity


def _references_from_relationships(relationships: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    references: list[tuple[str, str, str]] = []
    for relationship in relationships:
        attribute = relationship.get("ReferencingAttribute")
        target = relationship.get("ReferencedEntity")
        navigation = relationship.get("ReferencingEntityNavigationPropertyName")
        if not (attribute and target and navigation):
            continue
        targets = _OWNER_TARGETS if target == "owner" else (str(target),)
        references += [(str(attribute), t, str(navigation)) for t in targets]
    return references


def _references_from_attributes(attributes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    references: list[tuple[str, str, str]] = []
    for attribute in attributes:
        targets = [str(t) for t in attribute.get("Targets") or []]
        if attribute.get("AttributeType") not in _LOOKUP_TYPES or not targets:
            continue
        name = str(attribute["LogicalName"])
        polymorphic = len(targets) > 1 and attribute.get("AttributeType") != "Owner"
        references += [(name, t, f"{name}_{t}" if polymorphic else name) for t in targets]
    return references
