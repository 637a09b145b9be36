"""Sample app for the local Functions host tests: wiring only, like the connector's function_app.py."""

import azure.functions as func
from sample_functions import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)
