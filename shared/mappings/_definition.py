"""What a mapping needs beyond ``shared.domain.mapping.TableMapping``, kept here until the model has it.

Three things the built-in integration knows about a mapping that ``TableMapping`` cannot say:

- whether it is switched on at all (``enabled``), and whether it *can* be: a mapping the BC API
  v2.0 cannot serve (no entity for it) carries ``unavailable_reason`` and stays off whatever
  the configuration says;
- whether its Dataverse side is an option set on a table rather than a table
  (``option_set``: PAYMENT TERMS, SHIPMENT METHOD, SHIPPING AGENT), which changes how records
  are read and coupled and forbids Bidirectional;
- for a lookup whose BC value is a *code* rather than an id (``salespersonCode``), which field of
  the referenced BC record that code is (``lookup_keys``), so a use-case can fill
  ``LookupTable`` with the right keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.domain.mapping import TableMapping

__all__ = ["ID_KEY", "MappingDefinition", "OptionSetRef"]

ID_KEY = "id"  # a lookup whose BC value is the referenced record's SystemId (``currencyId`` …)


@dataclass(frozen=True)
class OptionSetRef:
    """The Dataverse option set that plays the part of a table in an option mapping.

    Its "rows" are the options: ``{"value": <int>, "label": <text>}``. The coupling's Dataverse id
    is the option value as text. Read the options from
    ``EntityDefinitions(LogicalName='<entity>')/Attributes(LogicalName='<attribute>')/
    Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet``; add a missing one with
    the ``InsertOptionValue`` action (the built-in appends BC codes that have no option).
    """

    entity: str  # logical name, e.g. "account"
    attribute: str  # e.g. "paymenttermscode"


@dataclass(frozen=True)
class MappingDefinition:
    """A default mapping with what the model cannot yet carry (see the module docstring)."""

    mapping: TableMapping
    enabled: bool = True
    unavailable_reason: str | None = None
    option_set: OptionSetRef | None = None
    # BC field of this mapping → field of the referenced BC record its value equals. Lookup fields
    # not listed here hold the referenced record's id (``ID_KEY``).
    lookup_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def name(self) -> str:
        """The mapping's name."""
        return self.mapping.name

    @property
    def available(self) -> bool:
        """Whether the BC API v2.0 can serve this mapping at all."""
        return self.unavailable_reason is None

    @property
    def active(self) -> bool:
        """Whether the connector runs this mapping."""
        return self.enabled and self.available

    def lookup_key(self, bc_field: str) -> str:
        """Which field of the referenced BC record ``bc_field``'s value equals."""
        return self.lookup_keys.get(bc_field, ID_KEY)
