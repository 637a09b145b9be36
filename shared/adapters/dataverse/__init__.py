"""Dataverse Web API v9.2 adapter."""

from shared.adapters.dataverse.client import DataverseWebApi
from shared.adapters.dataverse.port import DataverseAdapter

__all__ = ["DataverseAdapter", "DataverseWebApi"]
