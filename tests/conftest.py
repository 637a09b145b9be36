"""Test-session wiring: each piece of the local stack is a session fixture in ``tests/plugins``."""

pytest_plugins = [
    "tests.plugins.azurite",
    "tests.plugins.servicebus",
    "tests.plugins.dataverse",
    "tests.plugins.business_central",
    "tests.plugins.functions_host",
    "tests.plugins.connector",
]
