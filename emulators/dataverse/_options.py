"""Local option sets: the one piece of metadata a client can change (``InsertOptionValue``).

Every picklist attribute gets its own option dict here when its table is declared; the attribute's
``options`` is a read-only view of that dict, so validation, formatted values, push and
``EntityDefinitions`` all see an inserted option at once. The dicts are process-wide, like the
definitions themselves (one emulator per process); :func:`snapshot` / :func:`restore` let the back
door's snapshot carry them, so a test that inserts options is undone by the usual restore.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# (entity, attribute) → value → label, in the order the options were declared or inserted.
_SETS: dict[tuple[str, str], dict[int, str]] = {}
_DECLARED: dict[tuple[str, str], tuple[tuple[int, str], ...]] = {}

# Without a Value the platform assigns one from the solution publisher's option value prefix
# (Learn: InsertOptionValueRequest.Value remarks); the default publisher's prefix is 10000, so the
# first assigned value is 10000 * 10000.
CUSTOM_VALUE_START = 100_000_000
SNAPSHOT_KEY = "option_sets"


def register(entity: str, attribute: str, options: Mapping[int, str]) -> Mapping[int, str]:
    """Own a mutable copy of a declared option set; return the read-only view the attribute keeps."""
    key = (entity, attribute)
    _DECLARED[key] = tuple(options.items())
    _SETS[key] = dict(options)
    return MappingProxyType(_SETS[key])


def options_of(entity: str, attribute: str) -> dict[int, str] | None:
    """The live option dict of a local option set (``None`` when the attribute has none)."""
    return _SETS.get((entity, attribute))


def next_value(entity: str, attribute: str) -> int:
    options = _SETS[(entity, attribute)]
    return max((v for v in options if v >= CUSTOM_VALUE_START), default=CUSTOM_VALUE_START - 1) + 1


def snapshot() -> dict[str, Any]:
    # Only the sets that differ from their declaration, so demo snapshots stay small.
    return {
        f"{entity}.{attribute}": [[value, label] for value, label in options.items()]
        for (entity, attribute), options in _SETS.items()
        if tuple(options.items()) != _DECLARED[(entity, attribute)]
    }


def restore(saved: Mapping[str, Any] | None) -> None:
    """Back to the declarations, then re-apply the changed sets of an earlier :func:`snapshot`."""
    for key, declared in _DECLARED.items():
        _SETS[key].clear()
        _SETS[key].update(declared)
    for name, pairs in dict(saved or {}).items():
        entity, _, attribute = str(name).partition(".")
        live = _SETS.get((entity, attribute))
        if live is not None:
            live.clear()
            live.update((int(value), str(label)) for value, label in pairs)
