"""How an option mapping is written as a ``TableMapping`` (PAYMENT TERMS, SHIPMENT METHOD, SHIPPING AGENT).

The built-in couples a BC code table to the options of an option set on ``account`` ("CRM Option
Mapping", behaviour reference §1.4). Here the option set plays the Dataverse table:

- ``dataverse_entity_set`` is ``"<entity>.<attribute>"`` (e.g. ``"account.paymenttermscode"``):
  deliberately not an entity-set name, so nothing can mistake it for rows to page through;
  ``OptionSetRef`` on the definition says where the options live;
- a "row" is one option, ``{"value": 3, "label": "Net 45"}``; ``dataverse_key`` is ``value`` (the
  coupling's Dataverse id is the value as text) and ``dataverse_name_field`` is ``label``;
- options have no modified-on, so ``dataverse_modified_field`` is empty: each run compares all
  (option sets are small);
- the one field mapping is BC ``code`` → ``label``, marked for match-based coupling
  (case-insensitive), with create-new-if-no-match and sync-after-coupling, as the built-in;
- the direction is ToDataverse and may never be Bidirectional (the registry refuses it with the
  built-in's message).
"""

from __future__ import annotations

from shared.domain.mapping import FieldMapping, MatchRule, TableMapping
from shared.domain.state import SyncDirection
from shared.mappings._definition import MappingDefinition, OptionSetRef

__all__ = ["OPTION_BIDIRECTIONAL_MESSAGE", "OPTION_KEY", "OPTION_LABEL", "option_mapping"]

OPTION_KEY = "value"
OPTION_LABEL = "label"
OPTION_BIDIRECTIONAL_MESSAGE = "Option mappings can only synchronize from integration table or to integration table."


def option_mapping(
    name: str,
    *,
    bc_entity_set: str,
    option_set: OptionSetRef,
    enabled: bool = True,
    unavailable_reason: str | None = None,
    notes: tuple[str, ...] = (),
) -> MappingDefinition:
    """The definition of one option mapping (see the module docstring for the shape)."""
    mapping = TableMapping(
        name=name,
        bc_entity_set=bc_entity_set,
        dataverse_entity_set=f"{option_set.entity}.{option_set.attribute}",
        dataverse_key=OPTION_KEY,
        direction=SyncDirection.TO_DATAVERSE,
        bc_name_field="code",
        dataverse_name_field=OPTION_LABEL,
        dataverse_modified_field="",
        sync_only_coupled=True,
        sync_after_match_coupling=True,
        create_new_if_no_match=True,
        fields=(
            FieldMapping("code", OPTION_LABEL, SyncDirection.TO_DATAVERSE, transform="option_code", match=MatchRule()),
        ),
        notes=notes,
    )
    return MappingDefinition(mapping, enabled=enabled, unavailable_reason=unavailable_reason, option_set=option_set)
