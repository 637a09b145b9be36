"""Row-key encoding: any record id becomes a legal Table Storage key, reversibly."""

from __future__ import annotations

from datetime import datetime

# Table Storage forbids these in PartitionKey/RowKey; '%' is escaped so decoding is unambiguous.
_FORBIDDEN = {"/", "\\", "#", "?", "%"}
_MAX_TICKS = 10**19  # beyond any timestamp's microsecond count, so inverted keys stay positive


def encode_key(value: str) -> str:
    """Percent-encode the characters Table Storage does not allow in keys."""
    return "".join(
        f"%{ord(ch):02X}" if ch in _FORBIDDEN or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F else ch for ch in value
    )


def decode_key(value: str) -> str:
    """Reverse :func:`encode_key`."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "%":
            out.append(chr(int(value[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def newest_first_key(moment: datetime, unique: str) -> str:
    """A row key that sorts newer moments first (Table Storage lists keys ascending)."""
    micros = int(moment.timestamp() * 1_000_000)
    return f"{_MAX_TICKS - micros:020d}-{unique}"
