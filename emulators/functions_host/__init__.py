"""A local stand-in for Azure Functions Core Tools: hosts a v2-model ``function_app.py``.

HTTP triggers (routes, methods, keys), timer triggers (NCRONTAB with ``%SETTING%``) and Service
Bus queue triggers (real SDK, peek-lock, host settlement semantics) with ``host.json`` and
``local.settings.json`` read as Core Tools reads them. Run it with
``python -m emulators.functions_host --port 7071 --app-dir .``.
"""

from ._host import FUNCTION_KEY_SETTING, FunctionsHost, HostOptions
from ._settings import HostConfigError

__all__ = ["FUNCTION_KEY_SETTING", "FunctionsHost", "HostConfigError", "HostOptions"]
