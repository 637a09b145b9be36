"""Business Central API v2.0 adapter."""

from shared.adapters.business_central.client import BusinessCentralApi
from shared.adapters.business_central.port import BusinessCentralAdapter, Subscription

__all__ = ["BusinessCentralAdapter", "BusinessCentralApi", "Subscription"]
