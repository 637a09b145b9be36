"""Business Central API v2.0 adapter."""

from shared.adapters.business_central.client import BusinessCentralApi

__all__ = ["BusinessCentralApi"]
