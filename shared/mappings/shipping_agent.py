"""SHIPPING AGENT: BC Shipping Agent → the ``account.address1_shippingmethodcode`` option set.

Defined for completeness but **unavailable**: the BC API v2.0 has no shipping-agent entity (the
standard API pages stop at ``shipmentMethods``), and no customer or document field carries a
shipping agent either. A custom BC API page (``shippingAgents``: ``id``, ``code``,
``displayName``, ``lastModifiedDateTime``) would make it work unchanged; until then the
registry refuses to enable it.
"""

from __future__ import annotations

from shared.mappings._definition import OptionSetRef
from shared.mappings._options import option_mapping

__all__ = ["DEFINITION", "MAPPING"]

DEFINITION = option_mapping(
    "SHIPPING AGENT",
    bc_entity_set="shippingAgents",
    option_set=OptionSetRef("account", "address1_shippingmethodcode"),
    unavailable_reason="BC API v2.0 has no shipping agent entity (shippingAgents); a custom API page is needed.",
    notes=("Unavailable: no shippingAgents entity in BC API v2.0.",),
)
MAPPING = DEFINITION.mapping
