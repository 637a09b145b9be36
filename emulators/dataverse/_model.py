"""Entity metadata of the emulated organisation: the vocabulary every executor speaks.

Definitions are data (frozen dataclasses). ``_entities.py`` declares the tables; this module only
says what a table, an attribute and a state are, and derives the lookups and navigation
properties the Web API exposes from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class AttrType(StrEnum):
    """Dataverse ``AttributeType`` values (the subset the connector's tables use)."""

    STRING = "String"
    MEMO = "Memo"
    INTEGER = "Integer"
    BIGINT = "BigInt"
    DECIMAL = "Decimal"
    MONEY = "Money"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    LOOKUP = "Lookup"
    CUSTOMER = "Customer"
    OWNER = "Owner"
    UNIQUEIDENTIFIER = "Uniqueidentifier"
    ENTITYNAME = "EntityName"


LOOKUP_TYPES = frozenset({AttrType.LOOKUP, AttrType.CUSTOMER, AttrType.OWNER})
NUMBER_TYPES = frozenset({AttrType.INTEGER, AttrType.BIGINT, AttrType.DECIMAL, AttrType.MONEY})
OPTION_TYPES = frozenset({AttrType.PICKLIST, AttrType.STATE, AttrType.STATUS})

_EMPTY: Mapping[int, str] = MappingProxyType({})


@dataclass(frozen=True)
class Attribute:
    """One column. ``create``/``update`` mirror IsValidForCreate/IsValidForUpdate."""

    name: str
    type: AttrType
    max_length: int | None = None
    targets: tuple[str, ...] = ()
    options: Mapping[int, str] = field(default_factory=lambda: _EMPTY)
    create: bool = True
    update: bool = True
    min_value: float | None = None
    max_value: float | None = None

    @property
    def read_only(self) -> bool:
        return not self.create and not self.update

    @property
    def value_name(self) -> str:
        """The name a client reads: ``_x_value`` for lookups, the attribute name otherwise."""
        return f"_{self.name}_value" if self.type in LOOKUP_TYPES else self.name

    def navigation_for(self, target: str) -> str:
        """Single-valued navigation property name for ``target`` (polymorphic ones get a suffix)."""
        return self.name if len(self.targets) == 1 else f"{self.name}_{target}"


@dataclass(frozen=True)
class State:
    code: int
    label: str
    statuses: Mapping[int, str]
    default_status: int


@dataclass(frozen=True)
class CollectionNavigation:
    """A collection-valued navigation property: the rows of ``entity`` whose ``attribute`` is us."""

    name: str
    entity: str
    attribute: str


@dataclass(frozen=True)
class EntityDefinition:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    object_type_code: int
    attributes: Mapping[str, Attribute]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    states: tuple[State, ...] = ()
    initial_state: tuple[int, int] | None = None
    collections: tuple[CollectionNavigation, ...] = ()
    change_tracking: bool = True
    bulk_messages: bool = True
    number_attribute: str | None = None
    number_prefix: str = ""
    create_only: bool = False
    read_only_table: bool = False  # Create, Update and Delete answer 405 (the organization row)
    addressable_by_key: bool = True
    ownership: str = "UserOwned"
    display_name: str = ""
    _navigation: dict[str, tuple[Attribute, str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for attribute in self.attributes.values():
            if attribute.type in LOOKUP_TYPES:
                for target in attribute.targets:
                    self._navigation[attribute.navigation_for(target)] = (attribute, target)

    @property
    def schema_name(self) -> str:
        from ._privileges import schema_name  # the names privileges are built from

        return schema_name(self.logical_name)

    def navigation(self, name: str) -> tuple[Attribute, str] | None:
        """The lookup attribute and target table behind single-valued navigation property ``name``."""
        return self._navigation.get(name)

    def collection(self, name: str) -> CollectionNavigation | None:
        return next((c for c in self.collections if c.name == name), None)

    def state(self, code: int) -> State | None:
        return next((s for s in self.states if s.code == code), None)

    def attribute_by_value_name(self, name: str) -> Attribute | None:
        """Resolve ``name`` or ``_name_value`` to the attribute."""
        if name.startswith("_") and name.endswith("_value"):
            attribute = self.attributes.get(name[1:-6])
            return attribute if attribute is not None and attribute.type in LOOKUP_TYPES else None
        attribute = self.attributes.get(name)
        return attribute if attribute is not None and attribute.type not in LOOKUP_TYPES else None
