"""ASP.NET-style route templates as used by HTTP triggers: ``items/{id:guid}/{part?}``, ``{*rest}``."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["RouteTemplate", "RouteTemplateError"]


class RouteTemplateError(ValueError):
    """The route template uses syntax or a constraint this host does not implement."""


Check = Callable[[str], bool]


def _parses(kind: Callable[[str], object]) -> Check:
    def check(value: str) -> bool:
        try:
            kind(value)
        except (ValueError, ArithmeticError, InvalidOperation):
            return False
        return True

    return check


def _int_in(low: int, high: int) -> Check:
    def check(value: str) -> bool:
        return re.fullmatch(r"-?\d+", value) is not None and low <= int(value) <= high

    return check


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# Constraints without arguments, as ASP.NET Core routing defines them (culture-invariant).
_SIMPLE: dict[str, Check] = {
    "int": _int_in(*_INT32),
    "long": _int_in(*_INT64),
    "bool": lambda v: v.lower() in {"true", "false"},
    "guid": _parses(uuid.UUID),
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "double": _parses(float),
    "float": _parses(float),
    "decimal": _parses(Decimal),
    "datetime": _parses(dt.datetime.fromisoformat),
    "required": lambda v: v != "",
}


def _with_args(name: str, args: str) -> Check:
    if name == "regex":
        # Route templates escape braces inside regex constraints by doubling them.
        pattern = re.compile(args.replace("{{", "{").replace("}}", "}"), re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    numbers = [int(part) for part in args.split(",")]
    if name == "minlength" and len(numbers) == 1:
        return lambda v: len(v) >= numbers[0]
    if name == "maxlength" and len(numbers) == 1:
        return lambda v: len(v) <= numbers[0]
    if name == "length" and len(numbers) in {1, 2}:
        low, high = numbers[0], numbers[-1]
        return lambda v: low <= len(v) <= high
    if name == "min" and len(numbers) == 1:
        return _int_in(numbers[0], _INT64[1])
    if name == "max" and len(numbers) == 1:
        return _int_in(_INT64[0], numbers[0])
    if name == "range" and len(numbers) == 2:
        return _int_in(numbers[0], numbers[1])
    raise RouteTemplateError(f"route constraint {name}({args}) is not supported")


def _split_constraints(text: str) -> list[str]:
    # Split on ':' outside parentheses so regex(...) may contain colons.
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class _Param:
    name: str
    checks: tuple[Check, ...]
    optional: bool
    catch_all: bool
    default: str | None


def _parse_param(body: str, template: str) -> _Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default = None
    head, *constraints = _split_constraints(body)
    if constraints and "=" in constraints[-1]:
        constraints[-1], default = constraints[-1].split("=", 1)
    elif "=" in head:
        head, default = head.split("=", 1)
    optional = head.endswith("?") or (constraints and constraints[-1].endswith("?"))
    head = head.rstrip("?")
    if constraints:
        constraints[-1] = constraints[-1].rstrip("?")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", head):
        raise RouteTemplateError(f"route {template!r}: bad parameter name {head!r}")
    checks = []
    for constraint in constraints:
        call = re.fullmatch(r"(\w+)\((.*)\)", constraint, re.DOTALL)
        if call:
            checks.append(_with_args(call.group(1).lower(), call.group(2)))
        elif constraint.lower() in _SIMPLE:
            checks.append(_SIMPLE[constraint.lower()])
        else:
            raise RouteTemplateError(f"route {template!r}: constraint {constraint!r} is not supported")
    return _Param(head, tuple(checks), bool(optional) or default is not None, catch_all, default)


def _tokenize_segment(segment: str, template: str) -> list[str | _Param]:
    tokens: list[str | _Param] = []
    index = 0
    while index < len(segment):
        start = segment.find("{", index)
        if start < 0:
            tokens.append(segment[index:])
            break
        if start > index:
            tokens.append(segment[index:start])
        depth, end = 0, start
        for end in range(start, len(segment)):
            if segment[end] == "{":
                depth += 1
            elif segment[end] == "}":
                depth -= 1
                if depth == 0:
                    break
        if depth != 0:
            raise RouteTemplateError(f"route {template!r}: unbalanced braces")
        tokens.append(_parse_param(segment[start + 1 : end], template))
        index = end + 1
    return tokens


class RouteTemplate:
    """A compiled route template; :meth:`match` returns the route parameters or ``None``."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._params: list[_Param] = []
        pattern: list[str] = []
        rank: list[int] = []
        segments = list(template.strip("/").split("/")) if template.strip("/") else []
        for position, segment in enumerate(segments):
            tokens = _tokenize_segment(segment, template)
            lone = tokens[0] if len(tokens) == 1 and isinstance(tokens[0], _Param) else None
            if lone is not None and (lone.optional or lone.catch_all):
                # Only a whole trailing segment may be omitted, as in ASP.NET routing.
                if position != len(segments) - 1:
                    raise RouteTemplateError(f"route {template!r}: optional/catch-all parameter must be last")
                group = f"g{len(self._params)}"
                body = ".*" if lone.catch_all else "[^/]+"
                pattern.append(f"(?:/(?P<{group}>{body}))?")
                self._params.append(lone)
                rank.append(4 if lone.catch_all else 3)
                continue
            parts = ["/"]
            segment_rank = 0
            for token in tokens:
                if isinstance(token, str):
                    parts.append(re.escape(token))
                    continue
                if token.optional or token.catch_all:
                    raise RouteTemplateError(
                        f"route {template!r}: optional/catch-all parameter must be a whole last segment"
                    )
                parts.append(f"(?P<g{len(self._params)}>[^/]+?)")
                self._params.append(token)
                segment_rank = max(segment_rank, 1 if token.checks else 2)
            pattern.append("".join(parts))
            rank.append(segment_rank)
        self._regex = re.compile("^" + "".join(pattern) + "$", re.IGNORECASE | re.DOTALL)
        # Literal segments beat constrained parameters beat plain ones beat optional/catch-all.
        self.precedence = tuple(rank)

    def match(self, path: str) -> dict[str, str] | None:
        """Match a path below the route prefix (``/items/5``); return route params or ``None``."""
        trimmed = path.rstrip("/")
        if trimmed and not trimmed.startswith("/"):
            trimmed = "/" + trimmed
        found = self._regex.match(trimmed)
        if found is None:
            return None
        params: dict[str, str] = {}
        for index, param in enumerate(self._params):
            value = found.group(f"g{index}")
            if value is None:
                if param.default is not None:
                    params[param.name] = param.default
                continue
            if not all(check(value) for check in param.checks):
                return None
            params[param.name] = value
        return params
