"""Messages as the broker stores them: the sender's own bytes, plus broker-owned state.

Only the header, the message annotations and the application properties are decoded, because
those are the sections the broker rewrites (delivery count, sequence number, lock, dead-letter
reason). Every other section is kept as the raw bytes the sender produced, so the properties
and body a receiver sees are byte-for-byte what was sent.
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._codec import Described, Symbol, Timestamp, UByte, UInt, decode, decode_all, encode

__all__ = ["BATCH_FORMAT", "StoredMessage", "now_ms", "parse_message", "split_batch"]

# pyamqp (and every other Service Bus SDK) marks a batch transfer with this message format; its
# body is one data section per message, each holding a complete encoded message.
BATCH_FORMAT = 0x80013700

_HEADER = 0x70
_DELIVERY_ANNOTATIONS = 0x71
_MESSAGE_ANNOTATIONS = 0x72
_PROPERTIES = 0x73
_APPLICATION_PROPERTIES = 0x74
_DATA = 0x75

_SYMBOLIC_SECTIONS = {
    "amqp:header:list": 0x70,
    "amqp:delivery-annotations:map": 0x71,
    "amqp:message-annotations:map": 0x72,
    "amqp:properties:list": 0x73,
    "amqp:application-properties:map": 0x74,
    "amqp:data:binary": 0x75,
    "amqp:amqp-sequence:list": 0x76,
    "amqp:amqp-value:*": 0x77,
    "amqp:footer:map": 0x78,
}


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch, the unit of AMQP timestamps."""
    return int(time.time() * 1000)


def _same_key(a: Any, b: Any) -> bool:
    # Some encoders send annotation keys as binary rather than symbol; compare them as text.
    if isinstance(a, bytes):
        a = a.decode("utf-8", "replace")
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    return bool(a == b)


class RawMap:
    """An AMQP map kept as raw key/value encodings, so unknown value types survive untouched."""

    def __init__(self, entries: list[tuple[Any, bytes]] | None = None) -> None:
        self.entries: list[tuple[Any, bytes]] = entries or []

    @classmethod
    def parse(cls, buf: bytes, start: int) -> RawMap:
        """Parse the map whose constructor is at ``start``."""
        code = buf[start]
        if code in (0xC1, 0xD1):
            width = 1 if code == 0xC1 else 4
            count = buf[start + 2] if width == 1 else struct.unpack(">I", buf[start + 5 : start + 9])[0]
            pos = start + 1 + 2 * width
        elif code == 0x40:
            return cls()
        else:
            raise ValueError(f"expected an AMQP map, found constructor 0x{code:02x}")
        entries = []
        for _ in range(count // 2):
            key, value_start = decode(buf, pos)
            _, pos = decode(buf, value_start)
            entries.append((key, bytes(buf[value_start:pos])))
        return cls(entries)

    def get(self, key: str) -> Any:
        for existing, raw in self.entries:
            if _same_key(existing, key):
                return decode(raw)[0]
        return None

    def set(self, key: Any, value: Any) -> None:
        raw = encode(value)
        self.entries = [(k, v) for k, v in self.entries if not _same_key(k, key)]
        self.entries.append((key, raw))

    def remove(self, key: str) -> None:
        self.entries = [(k, v) for k, v in self.entries if not _same_key(k, key)]

    def encode(self) -> bytes:
        payload = b"".join(encode(k) + v for k, v in self.entries)
        return b"\xd1" + struct.pack(">II", len(payload) + 4, 2 * len(self.entries)) + payload

    def copy(self) -> RawMap:
        return RawMap(list(self.entries))


@dataclass
class StoredMessage:
    """One message in a queue, with the state the broker keeps about it."""

    header: list[Any]
    annotations: RawMap
    properties: bytes  # the raw properties section (with descriptor), or b""
    application_properties: RawMap
    rest: bytes  # body sections and footer, raw
    sequence_number: int = 0
    enqueued_ms: int = 0
    delivery_count: int = 0
    lock_token: uuid.UUID | None = None
    locked_until_ms: int = 0
    scheduled_ms: int = 0  # 0: not scheduled (or already visible)
    expires_ms: int = 0  # 0: never (time-to-live)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ttl_ms(self) -> int | None:
        ttl = self.header[2] if len(self.header) > 2 else None
        return int(ttl) if ttl is not None else None

    def expired(self, at_ms: int) -> bool:
        return self.expires_ms != 0 and at_ms >= self.expires_ms

    def encode(self, *, with_lock: bool) -> bytes:
        """Encode for a receiver: the sender's sections plus the broker's annotations."""
        header = list(self.header) + [None] * (5 - len(self.header))
        # The service counts deliveries from 1 but, as AMQP defines delivery-count as the
        # number of *previous* attempts, puts count - 1 on the wire; SDKs that report the
        # service's number add 1 back (the Python SDK reports the wire value as is).
        header[4] = UInt(max(0, self.delivery_count - 1))
        if header[2] is not None:
            header[2] = UInt(header[2])
        if header[1] is not None:
            header[1] = UByte(header[1])
        annotations = self.annotations.copy()
        annotations.set(Symbol("x-opt-sequence-number"), self.sequence_number)
        annotations.set(Symbol("x-opt-enqueued-time"), Timestamp(self.enqueued_ms))
        if with_lock and self.lock_token is not None:
            annotations.set(Symbol("x-opt-locked-until"), Timestamp(self.locked_until_ms))
            annotations.set(Symbol("x-opt-lock-token"), self.lock_token)
        parts = [encode(Described(_HEADER, header))]
        parts.append(b"\x00\x53" + bytes((_MESSAGE_ANNOTATIONS,)) + annotations.encode())
        parts.append(self.properties)
        if self.application_properties.entries:
            parts.append(b"\x00\x53" + bytes((_APPLICATION_PROPERTIES,)) + self.application_properties.encode())
        parts.append(self.rest)
        return b"".join(parts)

    def copy_for_dead_letter(self) -> StoredMessage:
        return StoredMessage(
            header=list(self.header),
            annotations=self.annotations.copy(),
            properties=self.properties,
            application_properties=self.application_properties.copy(),
            rest=self.rest,
            sequence_number=self.sequence_number,
            enqueued_ms=self.enqueued_ms,
            delivery_count=self.delivery_count,
        )


def _section_code(descriptor: Any) -> int:
    if isinstance(descriptor, str):
        return _SYMBOLIC_SECTIONS.get(descriptor, -1)
    return int(descriptor)


def parse_message(buf: bytes) -> StoredMessage:
    """Split an encoded message into the parts the broker rewrites and the parts it keeps.

    Raises:
        DecodeError: the bytes are not an AMQP message.
        ValueError: a section is not what the spec says it is.
    """
    header: list[Any] = []
    annotations = RawMap()
    properties = b""
    application_properties = RawMap()
    rest: list[bytes] = []
    for value, start, end in decode_all(buf):
        if not isinstance(value, Described):
            raise ValueError("a message section must be a described type")
        code = _section_code(value.descriptor)
        # The section value starts after the descriptor; find it by re-decoding the descriptor.
        _, value_start = decode(buf, start + 1)
        if code == _HEADER:
            header = list(value.value)
        elif code == _DELIVERY_ANNOTATIONS:
            continue  # delivery annotations are hop-by-hop: never stored
        elif code == _MESSAGE_ANNOTATIONS:
            annotations = RawMap.parse(buf, value_start)
        elif code == _PROPERTIES:
            properties = bytes(buf[start:end])
        elif code == _APPLICATION_PROPERTIES:
            application_properties = RawMap.parse(buf, value_start)
        else:
            rest.append(bytes(buf[start:end]))
    message = StoredMessage(header, annotations, properties, application_properties, b"".join(rest))
    return message


def split_batch(buf: bytes) -> list[bytes]:
    """Return the encoded messages inside a batch envelope (one per data section).

    Raises:
        DecodeError: the envelope is not an AMQP message.
    """
    inner = []
    for value, _, _ in decode_all(buf):
        if isinstance(value, Described) and _section_code(value.descriptor) == _DATA:
            inner.append(bytes(value.value))
    return inner
