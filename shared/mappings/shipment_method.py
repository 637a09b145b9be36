"""SHIPMENT METHOD: BC ``shipmentMethods`` → the ``account.address1_freighttermscode`` option set.

An option mapping (shape in ``_options.py``). Off by default only because the local Dataverse
emulator does not model ``address1_freighttermscode``; on a real organisation switch it on (and
CUSTOMER's ``shipmentMethodId`` field) with ``MAPPING_OVERRIDES``.
"""

from __future__ import annotations

from shared.mappings._definition import OptionSetRef
from shared.mappings._options import option_mapping

__all__ = ["DEFINITION", "MAPPING"]

DEFINITION = option_mapping(
    "SHIPMENT METHOD",
    bc_entity_set="shipmentMethods",
    option_set=OptionSetRef("account", "address1_freighttermscode"),
    enabled=False,
    notes=("Disabled by default: the local Dataverse emulator has no account.address1_freighttermscode.",),
)
MAPPING = DEFINITION.mapping
