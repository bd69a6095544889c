"""The worker's per-crime state, packed as the store and its changelog hold it."""

from __future__ import annotations

import datetime as dt
import struct

import orjson

from streams.core.classify import Cell
from streams.core.crimes import KEEP_SEEN, Held
from streams.errors import StateError

# --- per-crime state, as the store and its changelog hold it --------------------------------
# One table value per crime, kept in memory (or RocksDB) and in the changelog, so it is packed:
#   format (1) | flags (1: bit 0 domestic abuse) | partition (u32) | offset (i64) |
#   day ordinal (u32) | number of digests n (1) | n event digests (u64) | force US category US
#   disposal (UTF-8, US = \x1f)
# about 70 bytes for a crime with one outcome. The partition lets counters be rebuilt per
# partition. (This was an orjson array until 0.3: orjson >= 3.12 returns every small result in
# a 4 KiB buffer, which made the memory store cost 4 KiB per crime. Those values still decode.)

_HELD_FORMAT = 1
_HELD_HEAD = struct.Struct("<BBIqIB")
#: the head followed by n digests, one Struct per n (a crime keeps at most KEEP_SEEN)
_HELD_STRUCTS = [struct.Struct(f"<BBIqIB{n}Q") for n in range(KEEP_SEEN + 1)]


def encode_held(held: Held, partition: int) -> bytes:
    c = held.cell
    head = _HELD_STRUCTS[len(held.seen)].pack(
        _HELD_FORMAT, c.domestic_abuse, partition, held.offset, c.day.toordinal(), len(held.seen), *held.seen
    )
    return head + f"{c.force}\x1f{c.category}\x1f{c.disposal}".encode()


_HELD_DAY = struct.Struct("<I")
#: where the day of a crime's latest outcome sits in its packed state (after format, flags,
#: partition and offset)
_HELD_DAY_AT = 14


def held_day(data: bytes) -> int:
    """The ordinal day of a stored state's cell, without decoding the rest (the retention sweep
    and the store's expiry index read it for every state they touch)."""
    if data[:1] == b"[":
        return decode_held(data)[0].cell.day.toordinal()
    try:
        day: int = _HELD_DAY.unpack_from(data, _HELD_DAY_AT)[0]
    except struct.error as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return day


#: where a packed state's digests begin, and its count of them
_HELD_SEEN_AT = _HELD_HEAD.size
_HELD_COUNT_AT = _HELD_HEAD.size - 1
#: per domestic-abuse flag: stored cell text (force, category, disposal joined by 0x1f) -> the
#: combination, one object for every crime of it (as many as the combinations met)
_COMBOS: tuple[dict[bytes, tuple[str, str, str, bool]], ...] = ({}, {})


def held_combo(data: bytes) -> tuple[tuple[str, str, str, bool], int]:
    """((force, category, disposal, domestic-abuse flag), ordinal day) of a stored state's cell,
    without decoding the rest: deriving counts reads one for every crime held."""
    if data[:1] != b"\x01":  # another format: decoded in full
        cell = decode_held(data)[0].cell
        return (cell.force, cell.category, cell.disposal, cell.domestic_abuse), cell.day.toordinal()
    try:
        text = data[_HELD_SEEN_AT + 8 * data[_HELD_COUNT_AT] :]
        flag = data[1] & 1
        combos = _COMBOS[flag]
        combo = combos.get(text)
        if combo is None:
            force, category, disposal = text.decode().split("\x1f")
            combo = combos[text] = (force, category, disposal, bool(flag))
        day: int = _HELD_DAY.unpack_from(data, _HELD_DAY_AT)[0]
    except (ValueError, IndexError, struct.error) as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return combo, day


def decode_held(data: bytes) -> tuple[Held, int]:
    """Table value -> (state, partition). Raises ``StateError`` for bytes no version wrote."""
    try:
        if data[:1] == b"[":
            return _decode_held_json(data)
        fmt, flags, partition, offset, day, n = _HELD_HEAD.unpack_from(data)
        if fmt != _HELD_FORMAT:
            raise ValueError(f"format {fmt}")
        layout = _HELD_STRUCTS[n]
        seen = layout.unpack_from(data)[6:]
        force, category, disposal = data[layout.size :].decode().split("\x1f")
        cell = Cell(force, category, disposal, dt.date.fromordinal(day), bool(flags & 1))
    except (ValueError, IndexError, struct.error) as exc:
        raise StateError(f"unreadable crime state {data[:40]!r}: {exc}") from exc
    return Held(cell, seen, offset), partition


def _decode_held_json(data: bytes) -> tuple[Held, int]:
    force, category, disposal, day, da, seen, offset, partition = orjson.loads(data)
    cell = Cell(force, category, disposal, dt.date.fromordinal(day), bool(da))
    return Held(cell, tuple(int.from_bytes(bytes.fromhex(d), "little") for d in seen), offset), partition
