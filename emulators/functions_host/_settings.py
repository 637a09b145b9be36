"""Reading ``local.settings.json`` and ``host.json`` the way Azure Functions Core Tools does."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HostConfig",
    "HostConfigError",
    "LocalSettings",
    "apply_settings_to_environ",
    "load_host_config",
    "load_local_settings",
    "parse_timespan",
    "resolve_app_setting_refs",
]


class HostConfigError(Exception):
    """The app cannot be hosted as configured; the message says which function/setting and why."""


@dataclass(frozen=True)
class LocalSettings:
    """What ``local.settings.json`` contributes: app settings and the local HTTP port."""

    values: dict[str, str]
    local_http_port: int | None


def load_local_settings(path: Path) -> LocalSettings:
    """Read ``local.settings.json``; a missing file is an empty one, as with Core Tools.

    Raises:
        HostConfigError: the file exists but is not valid, or is encrypted.
    """
    if not path.is_file():
        return LocalSettings(values={}, local_http_port=None)
    try:
        # utf-8-sig: files saved by Visual Studio on Windows start with a BOM.
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise HostConfigError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise HostConfigError(f"{path}: expected a JSON object")
    if raw.get("IsEncrypted"):
        raise HostConfigError(f"{path}: IsEncrypted=true is not supported (run `func settings decrypt`)")
    values = raw.get("Values") or {}
    if not isinstance(values, dict):
        raise HostConfigError(f"{path}: 'Values' must be an object")
    host = raw.get("Host") or {}
    port = host.get("LocalHttpPort") if isinstance(host, dict) else None
    # App settings are strings in Azure; JSON numbers/booleans arrive as their text form.
    as_text = {str(k): _setting_text(v) for k, v in values.items()}
    return LocalSettings(values=as_text, local_http_port=int(port) if port is not None else None)


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def apply_settings_to_environ(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Export app settings as environment variables; return the names skipped.

    Core Tools lets a variable already set in the environment win over ``local.settings.json``
    (it logs "Skipping '<name>' from local settings as it's already defined in current
    environment variables"), which is what lets CI and fixtures override a checked-in file.
    """
    skipped = []
    for name, value in values.items():
        if name in environ:
            skipped.append(name)
        else:
            environ[name] = value
    return skipped


_REF = re.compile(r"%([^%]+)%")


def resolve_app_setting_refs(text: str, environ: Mapping[str, str], *, what: str) -> str:
    """Replace ``%NAME%`` references with app setting values, as the host does for binding expressions.

    Raises:
        HostConfigError: a referenced setting is not defined.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise HostConfigError(f"{what}: app setting '{name}' referenced as %{name}% is not defined")
        return environ[name]

    return _REF.sub(substitute, text)


_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<f>\d{1,7}))?$")


def parse_timespan(text: str, *, what: str) -> dt.timedelta | None:
    """Parse a .NET TimeSpan (``[d.]hh:mm:ss[.fffffff]``); ``-1`` means unlimited (``None``).

    Raises:
        HostConfigError: the text is not a TimeSpan.
    """
    if text.strip() == "-1":
        return None
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise HostConfigError(f"{what}: {text!r} is not a TimeSpan like '00:05:00'")
    fraction = match.group("f") or "0"
    return dt.timedelta(
        days=int(match.group("days") or 0),
        hours=int(match.group("h")),
        minutes=int(match.group("m")),
        seconds=int(match.group("s")),
        microseconds=int(fraction.ljust(7, "0")[:7]) / 10,
    )


@dataclass(frozen=True)
class HostConfig:
    """The parts of ``host.json`` this host honours."""

    route_prefix: str = "api"
    function_timeout: dt.timedelta | None = dt.timedelta(minutes=5)
    functions: tuple[str, ...] | None = None
    sb_max_concurrent_calls: int = 16
    sb_auto_complete_messages: bool = True
    sb_max_auto_lock_renewal: dt.timedelta | None = dt.timedelta(minutes=5)
    sb_max_message_batch_size: int = 1000
    sb_prefetch_count: int = 0


def _as_bool(value: Any, *, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise HostConfigError(f"{what}: expected true or false, got {value!r}")


def _as_int(value: Any, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise HostConfigError(f"{what}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise HostConfigError(f"{what}: expected an integer, got {value!r}") from exc


_OVERRIDE_PREFIX = "azurefunctionsjobhost__"


def _apply_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    # Azure lets app settings override host.json: AzureFunctionsJobHost__extensions__serviceBus__...
    for name, value in environ.items():
        if not name.lower().startswith(_OVERRIDE_PREFIX):
            continue
        node = raw
        *parents, leaf = name[len(_OVERRIDE_PREFIX) :].split("__")
        for part in parents:
            key = next((k for k in node if k.lower() == part.lower()), part)
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        key = next((k for k in node if k.lower() == leaf.lower()), leaf)
        node[key] = value


def _get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    # host.json keys are case-insensitive in the runtime.
    return next((v for k, v in mapping.items() if k.lower() == key.lower()), default)


def load_host_config(path: Path, environ: Mapping[str, str] | None = None) -> HostConfig:
    """Read ``host.json`` plus ``AzureFunctionsJobHost__*`` overrides; a missing file gives defaults.

    The default ``functionTimeout`` is the Consumption plan's 5 minutes, the plan the
    connector is sized for, so a local run fails the same way a cloud run would.

    Raises:
        HostConfigError: the file is invalid or a value has the wrong shape.
    """
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError as exc:
            raise HostConfigError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise HostConfigError(f"{path}: expected a JSON object")
    _apply_overrides(raw, environ or {})
    defaults = HostConfig()
    extensions = _get(raw, "extensions") or {}
    http = _get(extensions, "http") or {}
    sb = _get(extensions, "serviceBus") or {}
    timeout = defaults.function_timeout
    if _get(raw, "functionTimeout") is not None:
        timeout = parse_timespan(str(_get(raw, "functionTimeout")), what="host.json functionTimeout")
    renewal = defaults.sb_max_auto_lock_renewal
    if _get(sb, "maxAutoLockRenewalDuration") is not None:
        renewal = parse_timespan(
            str(_get(sb, "maxAutoLockRenewalDuration")),
            what="host.json extensions.serviceBus.maxAutoLockRenewalDuration",
        )
    functions = _get(raw, "functions")
    if functions is not None and not (isinstance(functions, list) and all(isinstance(name, str) for name in functions)):
        raise HostConfigError(f"{path}: 'functions' must be a list of function names")
    prefix = _get(http, "routePrefix", defaults.route_prefix)
    where = "host.json extensions.serviceBus"
    config = HostConfig(
        route_prefix=str(prefix).strip("/"),
        function_timeout=timeout,
        functions=tuple(functions) if functions is not None else None,
        sb_max_concurrent_calls=_as_int(
            _get(sb, "maxConcurrentCalls", defaults.sb_max_concurrent_calls), what=f"{where}.maxConcurrentCalls"
        ),
        sb_auto_complete_messages=_as_bool(
            _get(sb, "autoCompleteMessages", defaults.sb_auto_complete_messages),
            what=f"{where}.autoCompleteMessages",
        ),
        sb_max_auto_lock_renewal=renewal,
        sb_max_message_batch_size=_as_int(
            _get(sb, "maxMessageBatchSize", defaults.sb_max_message_batch_size),
            what=f"{where}.maxMessageBatchSize",
        ),
        sb_prefetch_count=_as_int(_get(sb, "prefetchCount", defaults.sb_prefetch_count), what=f"{where}.prefetchCount"),
    )
    if config.sb_max_concurrent_calls < 1:
        raise HostConfigError(f"{where}.maxConcurrentCalls must be at least 1")
    if config.sb_max_message_batch_size < 1:
        raise HostConfigError(f"{where}.maxMessageBatchSize must be at least 1")
    return config


def is_function_disabled(name: str, environ: Mapping[str, str]) -> bool:
    """``AzureWebJobs.<name>.Disabled=true`` switches a function off, as in Azure."""
    value = environ.get(f"AzureWebJobs.{name}.Disabled", "")
    return value.strip().lower() in {"true", "1"}
