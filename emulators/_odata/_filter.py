"""``$filter``: a tokenizer, a recursive-descent parser to a small AST, and an evaluator.

The subset is what Dataverse and BC clients actually send: comparisons, ``and``/``or``/``not``,
parentheses, ``contains``/``startswith``/``endswith`` and typed literals. Everything else that is
valid OData (arithmetic, ``in``, ``has``, lambdas, other functions) raises
:class:`ODataQueryError` with ``kind="unsupported"`` so an emulator answers 400 instead of a
plausible but wrong result.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from typing import Literal as TypingLiteral

from ._errors import ODataQueryError

LiteralType = TypingLiteral["string", "guid", "datetime", "date", "int", "decimal", "bool", "null"]
CompareOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le"]

_COMPARE_OPS: frozenset[str] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_UNSUPPORTED_OPS: frozenset[str] = frozenset({"add", "sub", "mul", "div", "mod", "divby", "in", "has"})
_STRING_FUNCTIONS: frozenset[str] = frozenset({"contains", "startswith", "endswith"})


@dataclass(frozen=True)
class Literal:
    """A typed constant: ``'text'``, a GUID, a date/time, a number, ``true``/``false`` or ``null``."""

    value: Any
    type: LiteralType


@dataclass(frozen=True)
class Property:
    """A property reference; ``name`` may be a path (``primarycontactid/fullname``)."""

    name: str


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp:
    op: TypingLiteral["and", "or"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class Call:
    """``contains``/``startswith``/``endswith`` with its two arguments."""

    name: str
    args: tuple[Expr, ...]


Expr = Literal | Property | Compare | BoolOp | Not | Call

# Order matters: a GUID or a date must win over a number, which must win over an identifier.
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![\w-])
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)(?![\w:.])
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\w:-])
  | (?P<number>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[mMdDfFlL]?)(?![\w.])
  | (?P<ident>[A-Za-z_@$][\w.@/$]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise ODataQueryError(f"Unterminated string literal at position {pos} in $filter.")
            raise ODataQueryError(f"Syntax error at position {pos} in $filter '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _parse_datetime(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ODataQueryError(f"'{text}' is not a valid date/time literal.", kind="invalid_value") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _literal_from(token: _Token) -> Literal:
    text = token.text
    if token.kind == "string":
        return Literal(text[1:-1].replace("''", "'"), "string")
    if token.kind == "guid":
        return Literal(uuid.UUID(text), "guid")
    if token.kind == "datetime":
        return Literal(_parse_datetime(text), "datetime")
    if token.kind == "date":
        try:
            return Literal(date.fromisoformat(text), "date")
        except ValueError as exc:
            raise ODataQueryError(f"'{text}' is not a valid date literal.", kind="invalid_value") from exc
    if token.kind == "number":
        body = text.rstrip("mMdDfFlL")
        if re.fullmatch(r"[-+]?\d+", body):
            return Literal(int(body), "int")
        try:
            return Literal(Decimal(body), "decimal")
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
            raise ODataQueryError(f"'{text}' is not a valid number.", kind="invalid_value") from exc
    raise ODataQueryError(f"Unexpected token '{text}' at position {token.pos}.")


_CALL_RE = re.compile(r"([A-Za-z_][\w./]*)\s*\(")
_KEYWORDS = frozenset({"and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le"})


def _reject_unsupported_calls(text: str) -> None:
    # Before tokenizing: lambdas and namespaced functions contain characters (':', '[') the
    # tokenizer does not know, and they must be reported as unsupported, not as syntax errors.
    unquoted = re.sub(r"'(?:[^']|'')*'", "''", text)
    for name in _CALL_RE.findall(unquoted):
        lowered = name.lower()
        if lowered in _KEYWORDS or lowered in _STRING_FUNCTIONS:
            continue
        if "/" in name:
            raise ODataQueryError(f"Lambda operators ('{name}') are not supported in $filter.", kind="unsupported")
        raise ODataQueryError(f"The function '{name}' is not supported in $filter.", kind="unsupported")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        _reject_unsupported_calls(text)
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def peek_word(self) -> str | None:
        token = self.peek()
        return token.text.lower() if token is not None and token.kind == "ident" else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ODataQueryError(f"Unexpected end of $filter '{self.text}'.")
        self.index += 1
        return token

    def expect(self, kind: str) -> _Token:
        token = self.take()
        if token.kind != kind:
            raise ODataQueryError(f"Expected '{_PUNCTUATION.get(kind, kind)}' at position {token.pos} in $filter.")
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise ODataQueryError("The $filter expression is empty.")
        expr = self.parse_or()
        token = self.peek()
        if token is not None:
            word = token.text.lower()
            if word in _UNSUPPORTED_OPS:
                raise ODataQueryError(f"The '{word}' operator is not supported in $filter.", kind="unsupported")
            raise ODataQueryError(f"Unexpected '{token.text}' at position {token.pos} in $filter.")
        return expr

    def parse_or(self) -> Expr:
        left = self.parse_and()
        while self.peek_word() == "or":
            self.take()
            left = BoolOp("or", left, self.parse_and())
        return left

    def parse_and(self) -> Expr:
        left = self.parse_unary()
        while self.peek_word() == "and":
            self.take()
            left = BoolOp("and", left, self.parse_unary())
        return left

    def parse_unary(self) -> Expr:
        if self.peek_word() == "not":
            self.take()
            return Not(self.parse_unary())
        return self.parse_comparison()

    def parse_comparison(self) -> Expr:
        left = self.parse_primary()
        word = self.peek_word()
        if word in _COMPARE_OPS:
            self.take()
            right = self.parse_primary()
            return Compare(word, left, right)  # type: ignore[arg-type]  # narrowed by the set test
        if word in _UNSUPPORTED_OPS:
            raise ODataQueryError(f"The '{word}' operator is not supported in $filter.", kind="unsupported")
        return left

    def parse_primary(self) -> Expr:
        token = self.take()
        if token.kind == "lparen":
            inner = self.parse_or()
            self.expect("rparen")
            return inner
        if token.kind == "ident":
            word = token.text.lower()
            nxt = self.peek()
            if nxt is not None and nxt.kind == "lparen":
                return self.parse_call(token)
            if word in ("true", "false"):
                return Literal(word == "true", "bool")
            if word == "null":
                return Literal(None, "null")
            if word in _COMPARE_OPS or word in ("and", "or"):
                raise ODataQueryError(f"Expected an operand at position {token.pos} in $filter.")
            if token.text.startswith(("@", "$")):
                raise ODataQueryError(
                    f"Parameter aliases and '{token.text}' are not supported in $filter.", kind="unsupported"
                )
            return Property(token.text)
        if token.kind in ("rparen", "comma"):
            raise ODataQueryError(f"Unexpected '{token.text}' at position {token.pos} in $filter.")
        return _literal_from(token)

    def parse_call(self, name_token: _Token) -> Expr:
        name = name_token.text
        if name.lower() not in _STRING_FUNCTIONS:
            if "/" in name:
                raise ODataQueryError(f"Lambda operators ('{name}') are not supported in $filter.", kind="unsupported")
            raise ODataQueryError(f"The function '{name}' is not supported in $filter.", kind="unsupported")
        self.expect("lparen")
        args: list[Expr] = [self.parse_or()]
        while (token := self.peek()) is not None and token.kind == "comma":
            self.take()
            args.append(self.parse_or())
        self.expect("rparen")
        if len(args) != 2:
            raise ODataQueryError(f"The function '{name}' takes 2 arguments, not {len(args)}.")
        return Call(name.lower(), tuple(args))


_PUNCTUATION = {"lparen": "(", "rparen": ")", "comma": ","}


def parse_filter(text: str) -> Expr:
    """Parse a ``$filter`` value.

    Raises:
        ODataQueryError: malformed text, or valid OData outside the supported subset.
    """
    return _Parser(text).parse()


def referenced_properties(expr: Expr) -> Iterator[str]:
    """Every property name used in ``expr``, so the caller can check them against its schema."""
    if isinstance(expr, Property):
        yield expr.name
    elif isinstance(expr, Compare | BoolOp):
        yield from referenced_properties(expr.left)
        yield from referenced_properties(expr.right)
    elif isinstance(expr, Not):
        yield from referenced_properties(expr.operand)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from referenced_properties(arg)


Getter = Callable[[str], Any]


def _value(expr: Expr, get: Getter) -> tuple[Any, LiteralType | None]:
    if isinstance(expr, Literal):
        return expr.value, expr.type
    if isinstance(expr, Property):
        return get(expr.name), None
    raise ODataQueryError("Only properties and literals can be compared in $filter.", kind="unsupported")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _parse_datetime(value)
        except ODataQueryError:
            return None
    return None


def _normalize(left: Any, right: Any, case_insensitive: bool) -> tuple[Any, Any]:
    """Bring a stored value and a literal to one comparable type (or raise on a type clash)."""
    if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
        try:
            return uuid.UUID(str(left)), uuid.UUID(str(right))
        except ValueError as exc:
            raise ODataQueryError("A GUID can only be compared with a GUID.", kind="invalid_value") from exc
    if isinstance(left, datetime | date) or isinstance(right, datetime | date):
        lhs, rhs = _as_datetime(left), _as_datetime(right)
        if lhs is None or rhs is None:
            raise ODataQueryError("A date/time can only be compared with a date/time.", kind="invalid_value")
        return lhs, rhs
    if isinstance(left, bool) or isinstance(right, bool):
        if not (isinstance(left, bool) and isinstance(right, bool)):
            raise ODataQueryError("A Boolean can only be compared with true or false.", kind="invalid_value")
        return left, right
    if isinstance(left, int | float | Decimal) and isinstance(right, int | float | Decimal):
        return Decimal(str(left)), Decimal(str(right))
    if isinstance(left, str) and isinstance(right, str):
        return (left.casefold(), right.casefold()) if case_insensitive else (left, right)
    raise ODataQueryError(
        f"Cannot compare a value of type {type(left).__name__} with {type(right).__name__}.",
        kind="invalid_value",
    )


def _compare(expr: Compare, get: Getter, case_insensitive: bool) -> bool:
    left, _ = _value(expr.left, get)
    right, _ = _value(expr.right, get)
    if left is None or right is None:
        # SQL semantics as the services have them: only eq/ne match null, ordering never does.
        if expr.op == "eq":
            return left is None and right is None
        if expr.op == "ne":
            return not (left is None and right is None)
        return False
    lhs, rhs = _normalize(left, right, case_insensitive)
    if expr.op == "eq":
        return bool(lhs == rhs)
    if expr.op == "ne":
        return bool(lhs != rhs)
    try:
        if expr.op == "gt":
            return bool(lhs > rhs)
        if expr.op == "ge":
            return bool(lhs >= rhs)
        if expr.op == "lt":
            return bool(lhs < rhs)
        return bool(lhs <= rhs)
    except TypeError as exc:  # e.g. ordering GUIDs against booleans
        raise ODataQueryError(f"The '{expr.op}' operator cannot order these values.", kind="invalid_value") from exc


def _call(expr: Call, get: Getter, case_insensitive: bool) -> bool:
    haystack, _ = _value(expr.args[0], get)
    needle, _ = _value(expr.args[1], get)
    if haystack is None or needle is None:
        return False
    if not isinstance(haystack, str) or not isinstance(needle, str):
        raise ODataQueryError(f"'{expr.name}' needs string arguments.", kind="invalid_value")
    if case_insensitive:
        haystack, needle = haystack.casefold(), needle.casefold()
    if expr.name == "contains":
        return needle in haystack
    if expr.name == "startswith":
        return haystack.startswith(needle)
    return haystack.endswith(needle)


def evaluate(expr: Expr, get: Getter, *, case_insensitive: bool = True) -> bool:
    """Whether the row that ``get`` reads from matches ``expr``.

    Args:
        expr: a parsed ``$filter``.
        get: returns a property's value for a (possibly path) name, ``None`` when it is null.
            Dates may be ``datetime`` objects or ISO strings; GUIDs ``UUID``s or strings.
        case_insensitive: string comparison the way Dataverse's SQL collation does it.

    Raises:
        ODataQueryError: the expression compares values of clashing types.
    """
    if isinstance(expr, BoolOp):
        if expr.op == "and":
            return evaluate(expr.left, get, case_insensitive=case_insensitive) and evaluate(
                expr.right, get, case_insensitive=case_insensitive
            )
        return evaluate(expr.left, get, case_insensitive=case_insensitive) or evaluate(
            expr.right, get, case_insensitive=case_insensitive
        )
    if isinstance(expr, Not):
        return not evaluate(expr.operand, get, case_insensitive=case_insensitive)
    if isinstance(expr, Compare):
        return _compare(expr, get, case_insensitive)
    if isinstance(expr, Call):
        return _call(expr, get, case_insensitive)
    if isinstance(expr, Property):
        value = get(expr.name)
        if value is None or isinstance(value, bool):
            return value is True
        raise ODataQueryError(f"The property '{expr.name}' is not a Boolean.", kind="invalid_value")
    if isinstance(expr, Literal) and expr.type == "bool":
        return bool(expr.value)
    raise ODataQueryError("A $filter expression must be a condition.", kind="invalid_value")
