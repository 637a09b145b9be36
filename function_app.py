"""The Functions app: wires the blueprints of ``functions/`` and nothing else."""

import azure.functions as func

from functions import http_health
from shared.config import get_settings

# Fail at start, naming every missing or invalid setting, rather than at the first request.
get_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(http_health.bp)
