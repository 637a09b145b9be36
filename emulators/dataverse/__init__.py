"""Local emulator of the Dataverse Web API v9.2 (Dynamics 365 Sales) for the connector's stack.

Start it with ``python -m emulators.dataverse --port N [--seed demo|large:N]``; it prints one JSON
start line and serves HTTPS until SIGTERM. See ``_service`` for the request flow.
"""

from emulators.dataverse._seed import seed_id
from emulators.dataverse._service import ApiRequest, ApiResponse, DataverseApi

__all__ = ["ApiRequest", "ApiResponse", "DataverseApi", "seed_id"]
