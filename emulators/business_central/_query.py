"""BC's OData query subset: ``$filter``, ``$select``, ``$orderby``, ``$expand``; loud on the rest.

BC translates a ``$filter`` into AL record filters, so it accepts comparisons, ``and``, ``or``
on one field, ``not``, parentheses and ``contains`` / ``startswith`` / ``endswith``. An ``or``
across different fields cannot become an AL filter, and BC refuses it; so do we.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from emulators.business_central._schema import EntityType, Field

__all__ = [
    "ExpandItem",
    "Filter",
    "QueryError",
    "comparable",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_select",
]


class QueryError(Exception):
    """A query option BC would refuse with 400."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
    |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<num>-?\d+(?:\.\d+)?)
    |(?P<punct>[(),])
    |(?P<word>[A-Za-z_][A-Za-z0-9_/.]*)
    )""",
    re.VERBOSE,
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class _Literal:
    kind: str
    value: Any


@dataclass(frozen=True)
class _Node:
    op: str  # and / or / not / a comparison / a function
    args: tuple[Any, ...]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class Filter:
    """A parsed ``$filter``: call it with a record to test it."""

    def __init__(self, root: Any, entity: EntityType) -> None:
        self._root = root
        self._entity = entity
        # "f eq a or f eq b …" terms of the top-level and-chain, answered by one set lookup, as
        # SQL answers them from an index; the other terms are evaluated as written.
        self._members: list[tuple[Field, set[Any]]] = []
        self._rest: list[Any] = []
        for node in _terms(root, "and"):
            members = _membership(node)
            if members is None:
                self._rest.append(node)
            else:
                self._members.append(members)

    def seek(self, stored: dict[str, Any], derived: frozenset[str] = frozenset()) -> bool:
        """Whether a stored record can match, from the ``f eq … or …`` terms alone (an index seek).

        ``derived`` names fields whose value the API computes rather than stores; those terms
        are left to the full test on the record as the API shows it.
        """
        for field, values in self._members:
            if field.name in derived:
                continue
            value = stored[field.name] if field.name in stored else field.blank()
            if comparable(field, value) not in values:
                return False
        return True

    def member_fields(self) -> list[Field]:
        """Fields of the ``f eq … or …`` terms of the top-level and-chain (each one index-seekable)."""
        return [field for field, _ in self._members]

    def key_values(self, name: str) -> set[Any] | None:
        """The values of an ``name eq … or …`` term of the top-level and-chain (a primary-key seek)."""
        found = [values for field, values in self._members if field.name == name]
        return set.intersection(*found) if found else None

    def __call__(self, record: dict[str, Any]) -> bool:
        for field, values in self._members:
            if _field_value(field, record) not in values:
                return False
        return all(_eval(node, record, self._entity) for node in self._rest)

    def equalities(self) -> dict[str, Any]:
        """``property eq literal`` terms of the top-level ``and`` chain, as AL's ``GetFilter`` sees them.

        Values are in comparable form (a guid lower-cased, a string as written).
        """
        found: dict[str, Any] = {}
        pending = [self._root]
        while pending:
            node = pending.pop()
            if not isinstance(node, _Node):
                continue
            if node.op == "and":
                pending.extend(node.args)
                continue
            if node.op != "eq":
                continue
            left, right = node.args
            if isinstance(left, _Literal) and isinstance(right, Field):
                left, right = right, left
            if isinstance(left, Field) and isinstance(right, _Literal):
                found[left.name] = _coerce(left, right)
        return found


def parse_filter(text: str, entity: EntityType) -> Filter:
    """Parse ``text`` for ``entity``.

    Raises:
        QueryError: syntax, unknown property, unsupported function or a cross-field ``or``.
    """
    tokens = _tokenize(text)
    parser = _Parser(tokens, entity)
    root = parser.expression()
    if parser.pos != len(tokens):
        raise QueryError(f"Syntax error: unexpected '{tokens[parser.pos][1]}' in $filter.")
    _check_or(root)
    return Filter(root, entity)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], entity: EntityType) -> None:
        self.tokens = tokens
        self.pos = 0
        self.entity = entity

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError("Syntax error: the $filter expression ends too early.")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        _, got = self.take()
        if got != value:
            raise QueryError(f"Syntax error: expected '{value}' but found '{got}' in $filter.")

    def expression(self) -> Any:
        left = self.conjunction()
        while (token := self.peek()) is not None and token == ("word", "or"):
            self.take()
            left = _Node("or", (left, self.conjunction()))
        return left

    def conjunction(self) -> Any:
        left = self.unary()
        while (token := self.peek()) is not None and token == ("word", "and"):
            self.take()
            left = _Node("and", (left, self.unary()))
        return left

    def unary(self) -> Any:
        if self.peek() == ("word", "not"):
            self.take()
            return _Node("not", (self.unary(),))
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        left = self.operand()
        if isinstance(left, _Node):  # a boolean function call
            return left
        token = self.peek()
        if token is None or token[0] != "word" or token[1] not in _COMPARISONS:
            found = token[1] if token else "end of expression"
            if token and token[1] in {"has", "in", "add", "sub", "mul", "div", "mod"}:
                raise QueryError(f"The operator '{token[1]}' is not supported.", "BadRequest_NotSupported")
            raise QueryError(f"Syntax error: expected a comparison operator but found '{found}'.")
        op = self.take()[1]
        return _Node(op, (left, self.operand()))

    def operand(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return _Literal("string", value[1:-1].replace("''", "'"))
        if kind == "num":
            return _Literal("number", Decimal(value))
        if kind in ("guid", "date", "datetime"):
            return _Literal(kind, value)
        if kind == "word":
            if value in ("true", "false"):
                return _Literal("bool", value == "true")
            if value == "null":
                return _Literal("null", None)
            if self.peek() == ("punct", "("):
                return self.function(value)
            field = self.entity.get_field(value)
            if field is None:
                raise QueryError(
                    f"Could not find a property named '{value}' on type 'Microsoft.NAV.{self.entity.name}'."
                )
            return field
        raise QueryError(f"Syntax error: unexpected '{value}' in $filter.")

    def function(self, name: str) -> _Node:
        if name not in _FUNCTIONS:
            raise QueryError(f"The function '{name}' is not supported.", "BadRequest_NotSupported")
        self.expect("(")
        subject = self.operand()
        self.expect(",")
        needle = self.operand()
        self.expect(")")
        if not isinstance(subject, Field) or not isinstance(needle, _Literal) or needle.kind != "string":
            raise QueryError(f"The function '{name}' needs a property and a string literal.")
        return _Node(name, (subject, needle))


def _terms(node: Any, op: str) -> list[Any]:
    """The operands of a chain of ``op`` (``a op b op c`` → ``[a, b, c]``, in any order)."""
    found: list[Any] = []
    pending = [node]
    while pending:
        term = pending.pop()
        if isinstance(term, _Node) and term.op == op:
            pending.extend(term.args)
        else:
            found.append(term)
    return found


def _membership(node: Any) -> tuple[Field, set[Any]] | None:
    """``(field, values)`` when ``node`` is ``field eq literal`` terms or-ed together, else ``None``."""
    field: Field | None = None
    values: set[Any] = set()
    for term in _terms(node, "or"):
        if not isinstance(term, _Node) or term.op != "eq":
            return None
        left, right = term.args
        if isinstance(left, _Literal) and isinstance(right, Field):
            left, right = right, left
        if not isinstance(left, Field) or not isinstance(right, _Literal) or (field is not None and left != field):
            return None
        field = left
        values.add(_coerce(left, right))
    return (field, values) if field is not None else None


def _fields_in(node: Any) -> set[str]:
    if isinstance(node, Field):
        return {node.name}
    if isinstance(node, _Node):
        found: set[str] = set()
        for arg in node.args:
            found |= _fields_in(arg)
        return found
    return set()


def _check_or(node: Any) -> None:
    if not isinstance(node, _Node):
        return
    if node.op == "or" and len(_fields_in(node)) > 1:
        raise QueryError("The 'OR' operator is not supported on distinct fields.", "BadRequest_NotSupported")
    for arg in node.args:
        _check_or(arg)


def _parse_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _coerce(field: Field, literal: _Literal) -> Any:
    """Bring a literal to the field's comparable form (raises QueryError on a type mismatch)."""
    if literal.kind == "null":
        return None
    try:
        if field.type == "datetime":
            if literal.kind not in ("datetime", "date"):
                raise ValueError
            return _parse_datetime(literal.value if literal.kind == "datetime" else f"{literal.value}T00:00:00Z")
        if field.type == "date":
            if literal.kind != "date":
                raise ValueError
            return str(literal.value)
        if field.type == "guid":
            if literal.kind not in ("guid", "string"):
                raise ValueError
            return str(literal.value).lower()
        if field.type in ("decimal", "int"):
            if literal.kind != "number":
                raise ValueError
            return Decimal(literal.value)
        if field.type == "bool":
            if literal.kind != "bool":
                raise ValueError
            return literal.value
        if literal.kind != "string":
            raise ValueError
        return str(literal.value)
    except (ValueError, InvalidOperation) as exc:
        raise QueryError(
            f"A binary operator with incompatible types was detected: '{field.name}' ({field.type}) "
            f"and a {literal.kind} literal."
        ) from exc


def _field_value(field: Field, record: dict[str, Any]) -> Any:
    return comparable(field, record.get(field.name))


def comparable(field: Field, value: Any) -> Any:
    """A stored value in the form filter literals take (a guid lower-cased, a number Decimal)."""
    if value is None:
        return None
    if field.type == "datetime":
        return _parse_datetime(str(value))
    if field.type in ("decimal", "int"):
        return Decimal(str(value))
    if field.type == "guid":
        return str(value).lower()
    return value


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
}


def _eval(node: Any, record: dict[str, Any], entity: EntityType) -> Any:
    if isinstance(node, _Node):
        if node.op == "and":
            return _eval(node.args[0], record, entity) and _eval(node.args[1], record, entity)
        if node.op == "or":
            return _eval(node.args[0], record, entity) or _eval(node.args[1], record, entity)
        if node.op == "not":
            return not _eval(node.args[0], record, entity)
        if node.op in _FUNCTIONS:
            field, needle = node.args
            haystack = str(record.get(field.name) or "").lower()
            text = str(needle.value).lower()
            return {
                "contains": text in haystack,
                "startswith": haystack.startswith(text),
                "endswith": haystack.endswith(text),
            }[node.op]
        left, right = node.args
        if isinstance(left, _Literal) and isinstance(right, Field):
            left, right = right, left
            node = _Node({"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(node.op, node.op), (left, right))
        if not isinstance(left, Field) or not isinstance(right, _Literal):
            raise QueryError("Comparisons must be between a property and a literal.", "BadRequest_NotSupported")
        expected = _coerce(left, right)
        actual = _field_value(left, record)
        if expected is None or actual is None:
            return _CMP[node.op](actual, expected) if node.op in ("eq", "ne") else False
        return _CMP[node.op](actual, expected)
    raise QueryError("A $filter must be a boolean expression.")


def parse_select(text: str, entity: EntityType) -> list[str]:
    """Validate a ``$select`` list."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if entity.get_field(name) is None:
            raise QueryError(f"Could not find a property named '{name}' on type 'Microsoft.NAV.{entity.name}'.")
    return names


def parse_orderby(text: str, entity: EntityType) -> list[tuple[Field, bool]]:
    """``[(field, descending), ...]`` from an ``$orderby``."""
    order = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise QueryError(f"Syntax error in $orderby at '{part.strip()}'.")
        field = entity.get_field(words[0])
        if field is None:
            raise QueryError(f"Could not find a property named '{words[0]}' on type 'Microsoft.NAV.{entity.name}'.")
        order.append((field, len(words) == 2 and words[1] == "desc"))
    return order


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` entry with its nested options."""

    name: str
    options: dict[str, str]


def _split_top_level(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError("Unbalanced parentheses in $expand.")
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise QueryError("Unbalanced parentheses in $expand.")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_expand(text: str, entity: EntityType) -> list[ExpandItem]:
    """Parse ``$expand`` (nested ``$select`` and ``$filter`` allowed; other nested options refused)."""
    items = []
    for part in _split_top_level(text, ","):
        name, _, rest = part.partition("(")
        name = name.strip()
        if name not in entity.navigations:
            raise QueryError(f"Could not find a property named '{name}' on type 'Microsoft.NAV.{entity.name}'.")
        options: dict[str, str] = {}
        if rest:
            if not rest.endswith(")"):
                raise QueryError("Syntax error in $expand.")
            for option in _split_top_level(rest[:-1], ";"):
                key, _, value = option.partition("=")
                key = key.strip()
                if key not in ("$select", "$filter"):
                    raise QueryError(
                        f"The query option '{key}' is not supported inside $expand.", "BadRequest_NotSupported"
                    )
                options[key] = value.strip()
        items.append(ExpandItem(name, options))
    return items
