"""Importing ``function_app.py`` and turning its functions into what this host can run.

Everything is read through the azure-functions library's own indexing API
(``FunctionApp.get_functions()``, ``Function.get_trigger()/get_bindings()``), the same API the
Python worker uses, so blueprints and ``function_name`` behave as in Azure. Anything the host
cannot honour fails here, at start, naming the function and the binding.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from ._routing import RouteTemplate, RouteTemplateError
from ._settings import HostConfig, HostConfigError, is_function_disabled, resolve_app_setting_refs

__all__ = [
    "AppFunction",
    "HttpFunction",
    "ServiceBusFunction",
    "TimerFunction",
    "UserCall",
    "load_functions",
]

_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class UserCall:
    """How to call one user function: which parameter gets the trigger value, and whether async."""

    function_name: str
    target: Callable[..., Any]
    trigger_param: str
    trigger_annotation: Any
    pass_context: bool
    is_async: bool
    directory: str


@dataclass(frozen=True)
class HttpFunction:
    """An HTTP-triggered function and its route."""

    call: UserCall
    route: RouteTemplate
    methods: tuple[str, ...]
    auth_level: str

    @property
    def name(self) -> str:
        """The function name, as Azure shows it."""
        return self.call.function_name


@dataclass(frozen=True)
class TimerFunction:
    """A timer-triggered function; ``schedule`` has ``%SETTING%`` references resolved."""

    call: UserCall
    schedule: str
    run_on_startup: bool

    @property
    def name(self) -> str:
        """The function name, as Azure shows it."""
        return self.call.function_name


@dataclass(frozen=True)
class ServiceBusFunction:
    """A Service Bus queue-triggered function with its resolved queue and connection string."""

    call: UserCall
    queue_name: str
    connection_setting: str
    connection_string: str
    many: bool
    auto_complete: bool

    @property
    def name(self) -> str:
        """The function name, as Azure shows it."""
        return self.call.function_name


AppFunction = HttpFunction | TimerFunction | ServiceBusFunction


def _enum_text(value: Any) -> str:
    # The decorators accept enums or plain strings; both spell the same value.
    return str(getattr(value, "value", value))


def _import_app(app_dir: Path) -> func.FunctionRegister:
    if not (app_dir / "function_app.py").is_file():
        raise HostConfigError(f"{app_dir}: no function_app.py (only the v2 programming model is supported)")
    sys.path.insert(0, str(app_dir))
    sys.modules.pop("function_app", None)
    module = importlib.import_module("function_app")
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise HostConfigError(f"{app_dir / 'function_app.py'}: defines no FunctionApp at module level")
    if len(apps) > 1:
        raise HostConfigError(f"{app_dir / 'function_app.py'}: defines more than one FunctionApp")
    return apps[0]


def _user_call(function: func.Function, trigger_name: str, directory: Path) -> UserCall:
    name = function.get_function_name() or function.get_user_function().__name__
    target = function.get_user_function()
    parameters = inspect.signature(target).parameters
    if trigger_name not in parameters:
        raise HostConfigError(
            f"function '{name}': its trigger binds to parameter '{trigger_name}', which "
            f"{target.__name__}() does not take"
        )
    extra = [p for p in parameters if p not in {trigger_name, "context"}]
    if extra:
        raise HostConfigError(
            f"function '{name}': parameters {extra} have no binding this host supports (only the trigger and 'context')"
        )
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations just mean "use the default type"
        hints = {}
    return UserCall(
        function_name=name,
        target=target,
        trigger_param=trigger_name,
        trigger_annotation=hints.get(trigger_name),
        pass_context="context" in parameters,
        is_async=inspect.iscoroutinefunction(target),
        directory=str(directory),
    )


def _check_bindings(name: str, function: func.Function, trigger: Any, allowed_outputs: set[str]) -> None:
    for binding in function.get_bindings():
        if binding is trigger:
            continue
        if binding.type in allowed_outputs and binding.name == "$return":
            continue
        raise HostConfigError(
            f"function '{name}': binding '{binding.name}' of type '{binding.type}' is not supported by "
            "the local Functions host (only the trigger and the HTTP $return output are)"
        )
    for setting in getattr(function, "_settings", []):
        if setting.setting_name != "function_name":
            raise HostConfigError(
                f"function '{name}': setting '{setting.setting_name}' is not supported by the local host"
            )


def _http(function: func.Function, trigger: Any, call: UserCall) -> HttpFunction:
    try:
        route = RouteTemplate(str(trigger.route))
    except RouteTemplateError as exc:
        raise HostConfigError(f"function '{call.function_name}': {exc}") from exc
    methods = tuple(_enum_text(m).upper() for m in (trigger.methods or _ALL_METHODS))
    return HttpFunction(
        call=call,
        route=route,
        methods=methods,
        auth_level=_enum_text(trigger.auth_level or "function").lower(),
    )


def _timer(trigger: Any, call: UserCall, environ: Mapping[str, str]) -> TimerFunction:
    schedule = resolve_app_setting_refs(
        str(trigger.schedule), environ, what=f"function '{call.function_name}' schedule"
    )
    return TimerFunction(call=call, schedule=schedule, run_on_startup=bool(trigger.run_on_startup))


def _servicebus(trigger: Any, call: UserCall, environ: Mapping[str, str], config: HostConfig) -> ServiceBusFunction:
    name = call.function_name
    if getattr(trigger, "topic_name", None) is not None:
        raise HostConfigError(f"function '{name}': Service Bus topic triggers are not supported (queues only)")
    if getattr(trigger, "is_sessions_enabled", None):
        raise HostConfigError(f"function '{name}': session-enabled Service Bus triggers are not supported")
    setting = resolve_app_setting_refs(str(trigger.connection), environ, what=f"function '{name}' connection")
    connection_string = environ.get(setting) or environ.get(f"AzureWebJobs{setting}")
    if not connection_string:
        hint = ""
        if any(key.startswith(f"{setting}__") for key in environ):
            hint = " (identity-based connections via '__fullyQualifiedNamespace' are not supported locally)"
        raise HostConfigError(f"function '{name}': connection app setting '{setting}' is not defined{hint}")
    queue_name = resolve_app_setting_refs(str(trigger.queue_name), environ, what=f"function '{name}' queue_name")
    many = _enum_text(trigger.cardinality or "one").lower() == "many"
    # The trigger's own auto_complete_messages wins over host.json, as in the extension.
    auto_complete = trigger.get_dict_repr().get("autoCompleteMessages")
    return ServiceBusFunction(
        call=call,
        queue_name=queue_name,
        connection_setting=setting,
        connection_string=connection_string,
        many=many,
        auto_complete=config.sb_auto_complete_messages if auto_complete is None else bool(auto_complete),
    )


def load_functions(app_dir: Path, environ: Mapping[str, str], config: HostConfig) -> list[AppFunction]:
    """Import the app in ``app_dir`` and describe each enabled function.

    Raises:
        HostConfigError: a function uses a trigger, binding or setting this host does not support.
    """
    app = _import_app(app_dir)
    # get_functions() warns through logging when an app has no HTTP function; that is noise here.
    indexing_logger = logging.getLogger()
    previous = indexing_logger.level
    indexing_logger.setLevel(logging.ERROR)
    try:
        functions = app.get_functions()
    finally:
        indexing_logger.setLevel(previous)
    result: list[AppFunction] = []
    for function in functions:
        name = function.get_function_name() or function.get_user_function().__name__
        if config.functions is not None and name not in config.functions:
            continue
        if is_function_disabled(name, environ):
            continue
        trigger = function.get_trigger()
        if trigger is None:
            raise HostConfigError(f"function '{name}': has no trigger")
        if trigger.type not in {"httpTrigger", "timerTrigger", "serviceBusTrigger"}:
            raise HostConfigError(
                f"function '{name}': trigger '{trigger.name}' of type '{trigger.type}' is not supported by "
                "the local Functions host (HTTP, timer and Service Bus queue triggers are)"
            )
        # Bindings first: an unsupported binding is a clearer message than the parameter it adds.
        _check_bindings(name, function, trigger, {"http"} if trigger.type == "httpTrigger" else set())
        call = _user_call(function, trigger.name, app_dir)
        if trigger.type == "httpTrigger":
            result.append(_http(function, trigger, call))
        elif trigger.type == "timerTrigger":
            result.append(_timer(trigger, call, environ))
        else:
            result.append(_servicebus(trigger, call, environ, config))
    return result
