"""AMQP 1.0 type system: just enough of the encoding (spec part 1) for a broker.

Decoding keeps positions so callers can slice the raw bytes of a value and pass it on untouched;
the broker relies on that to store messages exactly as the sender encoded them. Encoding picks
the wire type from small wrapper classes (``UInt``, ``Symbol``, ``Described``...) because Python's
``int`` and ``str`` alone cannot say whether a field is a uint, a long or a symbol.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "Array",
    "DecodeError",
    "Described",
    "Symbol",
    "Timestamp",
    "UByte",
    "UInt",
    "ULong",
    "UShort",
    "decode",
    "decode_all",
    "encode",
]


class DecodeError(ValueError):
    """The bytes are not valid AMQP 1.0 encoding (or use a type this broker does not know)."""


class UByte(int):
    """An AMQP ubyte."""


class UShort(int):
    """An AMQP ushort."""


class UInt(int):
    """An AMQP uint."""


class ULong(int):
    """An AMQP ulong."""


class Timestamp(int):
    """An AMQP timestamp: milliseconds since the Unix epoch."""


class Symbol(str):
    """An AMQP symbol (ASCII), as opposed to a UTF-8 string."""


class Described(NamedTuple):
    """A described value; performatives, sections and outcomes are lists described by a ulong."""

    descriptor: Any
    value: Any


class Array(NamedTuple):
    """An AMQP array: ``code`` is the element constructor (e.g. 0x81 long, 0x83 timestamp)."""

    code: int
    items: list[Any]


# ---------------------------------------------------------------------------------------------
# Decoding

_FIXED: dict[int, tuple[int, Callable[[bytes], Any]]] = {
    0x50: (1, lambda b: b[0]),
    0x51: (1, lambda b: struct.unpack(">b", b)[0]),
    0x52: (1, lambda b: b[0]),
    0x53: (1, lambda b: b[0]),
    0x54: (1, lambda b: struct.unpack(">b", b)[0]),
    0x55: (1, lambda b: struct.unpack(">b", b)[0]),
    0x56: (1, lambda b: b[0] != 0),
    0x60: (2, lambda b: struct.unpack(">H", b)[0]),
    0x61: (2, lambda b: struct.unpack(">h", b)[0]),
    0x70: (4, lambda b: struct.unpack(">I", b)[0]),
    0x71: (4, lambda b: struct.unpack(">i", b)[0]),
    0x72: (4, lambda b: struct.unpack(">f", b)[0]),
    0x73: (4, lambda b: chr(struct.unpack(">I", b)[0])),
    0x74: (4, bytes),  # decimal32: opaque
    0x80: (8, lambda b: struct.unpack(">Q", b)[0]),
    0x81: (8, lambda b: struct.unpack(">q", b)[0]),
    0x82: (8, lambda b: struct.unpack(">d", b)[0]),
    0x83: (8, lambda b: Timestamp(struct.unpack(">q", b)[0])),
    0x84: (8, bytes),  # decimal64: opaque
    0x94: (16, bytes),  # decimal128: opaque
    0x98: (16, lambda b: uuid.UUID(bytes=bytes(b))),
}
_EMPTY: dict[int, Any] = {0x40: None, 0x41: True, 0x42: False, 0x43: 0, 0x44: 0, 0x45: []}


def _need(buf: bytes, pos: int, size: int) -> None:
    if pos + size > len(buf):
        raise DecodeError("truncated AMQP value")


def _decode_body(buf: bytes, pos: int, code: int) -> tuple[Any, int]:
    """Decode the value that follows constructor ``code`` at ``pos``."""
    if code in _EMPTY:
        value = _EMPTY[code]
        return (list(value) if isinstance(value, list) else value), pos
    if code in _FIXED:
        size, convert = _FIXED[code]
        _need(buf, pos, size)
        return convert(buf[pos : pos + size]), pos + size
    if code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
        width = 1 if code < 0xB0 else 4
        _need(buf, pos, width)
        length = buf[pos] if width == 1 else struct.unpack(">I", buf[pos : pos + 4])[0]
        pos += width
        _need(buf, pos, length)
        raw = bytes(buf[pos : pos + length])
        pos += length
        if code in (0xA0, 0xB0):
            return raw, pos
        if code in (0xA3, 0xB3):
            return Symbol(raw.decode("ascii")), pos
        return raw.decode("utf-8"), pos
    if code in (0xC0, 0xC1, 0xD0, 0xD1):
        width = 1 if code < 0xD0 else 4
        _need(buf, pos, 2 * width)
        if width == 1:
            size, count = buf[pos], buf[pos + 1]
        else:
            size, count = struct.unpack(">II", buf[pos : pos + 8])
        end = pos + width + size
        pos += 2 * width
        items = []
        for _ in range(count):
            item, pos = decode(buf, pos)
            items.append(item)
        if pos != end:
            raise DecodeError("compound size does not match its contents")
        if code in (0xC0, 0xD0):
            return items, pos
        try:
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        except TypeError as error:  # an unhashable key, e.g. a list: legal AMQP, useless here
            raise DecodeError(f"map key not supported: {error}") from error
    if code in (0xE0, 0xF0):
        width = 1 if code == 0xE0 else 4
        _need(buf, pos, 2 * width)
        count = buf[pos + 1] if width == 1 else struct.unpack(">I", buf[pos + 4 : pos + 8])[0]
        pos += 2 * width
        _need(buf, pos, 1)
        element = buf[pos]
        pos += 1
        descriptor = None
        if element == 0x00:
            descriptor, pos = decode(buf, pos)
            element = buf[pos]
            pos += 1
        values = []
        for _ in range(count):
            value, pos = _decode_body(buf, pos, element)
            values.append(Described(descriptor, value) if descriptor is not None else value)
        return values, pos
    raise DecodeError(f"unknown AMQP constructor 0x{code:02x}")


def decode(buf: bytes, pos: int = 0) -> tuple[Any, int]:
    """Decode one value at ``pos``; return it and the position just after it.

    Raises:
        DecodeError: malformed or unsupported encoding.
    """
    _need(buf, pos, 1)
    code = buf[pos]
    pos += 1
    if code == 0x00:
        descriptor, pos = decode(buf, pos)
        value, pos = decode(buf, pos)
        return Described(descriptor, value), pos
    return _decode_body(buf, pos, code)


def decode_all(buf: bytes) -> list[tuple[Any, int, int]]:
    """Decode consecutive values (e.g. message sections) as (value, start, end) triples.

    Raises:
        DecodeError: malformed or unsupported encoding.
    """
    out = []
    pos = 0
    while pos < len(buf):
        start = pos
        value, pos = decode(buf, pos)
        out.append((value, start, pos))
    return out


# ---------------------------------------------------------------------------------------------
# Encoding


def _variable(small: int, large: int, payload: bytes) -> bytes:
    if len(payload) < 256:
        return bytes((small, len(payload))) + payload
    return bytes((large,)) + struct.pack(">I", len(payload)) + payload


def _compound(small: int, large: int, count: int, payload: bytes) -> bytes:
    if len(payload) + 1 < 256 and count < 256:
        return bytes((small, len(payload) + 1, count)) + payload
    return bytes((large,)) + struct.pack(">II", len(payload) + 4, count) + payload


_ARRAY_ELEMENT: dict[int, Callable[[Any], bytes]] = {
    0x81: lambda v: struct.pack(">q", v),
    0x83: lambda v: struct.pack(">q", v),
    0x80: lambda v: struct.pack(">Q", v),
    0x70: lambda v: struct.pack(">I", v),
    0x98: lambda v: v.bytes,
    0xB3: lambda v: struct.pack(">I", len(v)) + v.encode("ascii"),
    0xB1: lambda v: struct.pack(">I", len(v.encode("utf-8"))) + v.encode("utf-8"),
    0xB0: lambda v: struct.pack(">I", len(v)) + v,
}


def encode(value: Any) -> bytes:
    """Encode ``value``; plain ``int`` becomes a long, ``str`` a string, ``bytes`` a binary.

    Raises:
        TypeError: the value has no AMQP encoding here.
    """
    if value is None:
        return b"\x40"
    if isinstance(value, bool):
        return b"\x41" if value else b"\x42"
    if isinstance(value, Described):
        return b"\x00" + encode(value.descriptor) + encode(value.value)
    if isinstance(value, Array):
        element = _ARRAY_ELEMENT[value.code]
        payload = bytes((value.code,)) + b"".join(element(item) for item in value.items)
        return b"\xf0" + struct.pack(">II", len(payload) + 4, len(value.items)) + payload
    if isinstance(value, int):
        return _encode_int(value)
    if isinstance(value, float):
        return b"\x82" + struct.pack(">d", value)
    if isinstance(value, Symbol):
        return _variable(0xA3, 0xB3, value.encode("ascii"))
    if isinstance(value, str):
        return _variable(0xA1, 0xB1, value.encode("utf-8"))
    if isinstance(value, bytes | bytearray | memoryview):
        return _variable(0xA0, 0xB0, bytes(value))
    if isinstance(value, uuid.UUID):
        return b"\x98" + value.bytes
    if isinstance(value, list | tuple):
        if not value:
            return b"\x45"
        return _compound(0xC0, 0xD0, len(value), b"".join(encode(item) for item in value))
    if isinstance(value, dict):
        payload = b"".join(encode(k) + encode(v) for k, v in value.items())
        return _compound(0xC1, 0xD1, 2 * len(value), payload)
    raise TypeError(f"no AMQP encoding for {type(value).__name__}")


def _encode_int(value: int) -> bytes:
    if isinstance(value, UByte):
        return b"\x50" + struct.pack(">B", value)
    if isinstance(value, UShort):
        return b"\x60" + struct.pack(">H", value)
    if isinstance(value, UInt):
        if value == 0:
            return b"\x43"
        return b"\x52" + struct.pack(">B", value) if value < 256 else b"\x70" + struct.pack(">I", value)
    if isinstance(value, ULong):
        if value == 0:
            return b"\x44"
        return b"\x53" + struct.pack(">B", value) if value < 256 else b"\x80" + struct.pack(">Q", value)
    if isinstance(value, Timestamp):
        return b"\x83" + struct.pack(">q", value)
    if -128 <= value <= 127:
        return b"\x55" + struct.pack(">b", value)
    return b"\x81" + struct.pack(">q", value)
