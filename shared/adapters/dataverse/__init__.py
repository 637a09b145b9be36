"""Dataverse Web API v9.2 adapter."""

from shared.adapters.dataverse.client import DataverseWebApi

__all__ = ["DataverseWebApi"]
