"""SHIPMENT METHOD: BC ``shipmentMethods`` → the ``account.address1_freighttermscode`` option set.

An option mapping (shape in ``_options.py``): shipment method codes become freight-terms options.
"""

from __future__ import annotations

from shared.mappings._definition import OptionSetRef
from shared.mappings._options import option_mapping

__all__ = ["DEFINITION", "MAPPING"]

DEFINITION = option_mapping(
    "SHIPMENT METHOD",
    bc_entity_set="shipmentMethods",
    option_set=OptionSetRef("account", "address1_freighttermscode"),
)
MAPPING = DEFINITION.mapping
