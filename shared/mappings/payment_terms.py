"""PAYMENT TERMS: BC ``paymentTerms`` → the ``account.paymenttermscode`` option set.

An option mapping: the option set plays the Dataverse table (shape in ``_options.py``). Customers
reach the option through this mapping's couplings (``paymentTermsId`` → ``paymenttermscode``).
"""

from __future__ import annotations

from shared.mappings._definition import OptionSetRef
from shared.mappings._options import option_mapping

__all__ = ["DEFINITION", "MAPPING"]

DEFINITION = option_mapping(
    "PAYMENT TERMS",
    bc_entity_set="paymentTerms",
    option_set=OptionSetRef("account", "paymenttermscode"),
)
MAPPING = DEFINITION.mapping
