"""The worker's local state: each crime's latest state, and where each partition's state stands.

A crime's state and its partition's positions move together, in one atomic write, so the
positions never run ahead of or behind the state they describe:

- ``Positions.changelog_next``: the next changelog offset not yet in the store. Recovery reads the
  changelog from here to its end (``streams.runtime.recovery``).
- ``Positions.source_next``: the next offset of ``disposals`` whose effects are not yet in the
  store (for diagnostics: consumption restarts from the group's committed offset, and replays are
  harmless because ``streams.core.crimes.apply`` ignores what a crime has already seen).

Each partition also has an **expiry index**: one entry per state written, keyed by the day of
the state's cell (4 bytes, big-endian ordinal) then the crime key, so the crimes whose latest
outcome has left the retention horizon are found by reading the index up to the horizon, not
by scanning every crime (``streams.runtime.retention``). An entry outlives the state it was
written for when the crime moves to a later day (it is *stale*); the sweep removes it when its
day leaves the horizon. A store written before the index existed is indexed once, when the
partition is restored (``index_all``).

Two implementations of one interface:

- ``RocksStore`` (``DW_STORE=rocksdb``, the default): RocksDB through rocksdict, in
  ``DW_DATA_DIR/store``. One column family per partition (``p<n>``: crime key -> packed state, see
  ``streams.codec.encode_held``), one per partition's expiry index (``x<n>``), one per
  partition's saved counts (``k<n>``: combo -> its counts, see ``streams.runtime.saved_counts``),
  and a ``meta`` column family (``p<n>`` -> positions, ``x<n>`` -> the index is complete,
  ``k<n>`` -> the head of the saved counts, present only while they count exactly the crimes
  stored, ``deployment`` -> who wrote the store). A write is one RocksDB ``WriteBatch``, atomic across
  column families. Writes go to the write-ahead log without fsync: a killed process loses
  nothing (the operating system holds the log); a machine that loses power may lose the last
  writes, and then the stored positions are older too, so recovery reads those records again.
- ``MemoryStore`` (``DW_STORE=memory``): dictionaries, empty at every start, so each start
  restores every partition from the changelog. For tests and small deployments.

A store written by another deployment (another app id, changelog topic or partition count) is
wiped when opened: its positions would point into someone else's changelog.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streams.codec import held_day
from streams.errors import ConfigError, StateError, StorageError, shorten
from streams.runtime.saved_counts import CountsWrite, SavedCounts

log = logging.getLogger(__name__)

_POSITIONS = struct.Struct("<qq")
META = "meta"


@dataclass(frozen=True, slots=True)
class Positions:
    """Where a partition's stored state stands (see the module docstring)."""

    source_next: int
    changelog_next: int


@dataclass(frozen=True, slots=True)
class Deployment:
    """What a store belongs to; a store of another deployment is wiped when opened."""

    app_id: str
    changelog_topic: str
    partitions: int

    def encode(self) -> bytes:
        return json.dumps(
            {"app_id": self.app_id, "changelog": self.changelog_topic, "partitions": self.partitions},
            sort_keys=True,
        ).encode()


#: a crime's stored state, or None to delete it
States = Mapping[bytes, bytes | None]

_DAY = struct.Struct(">I")


def index_key(day: int, key: bytes) -> bytes:
    """The expiry index entry of crime ``key`` whose state's cell is on ordinal ``day``."""
    return _DAY.pack(day) + key


def index_entry(entry: bytes) -> tuple[int, bytes]:
    """(ordinal day, crime key) of an expiry index entry."""
    return _DAY.unpack_from(entry)[0], entry[_DAY.size :]


class Store(Protocol):
    """Crime states and positions per partition (see the module docstring)."""

    def reader(self, partition: int) -> Callable[[bytes], bytes | None]:
        """A fast lookup of crime states of one partition (bound once per batch)."""
        ...

    def positions(self, partition: int) -> Positions | None:
        """None: nothing stored for this partition yet."""
        ...

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]: ...

    def keys(self, partition: int, prefix: bytes) -> Iterator[bytes]:
        """Crime keys of a partition that start with ``prefix`` (``force_id/``), in key order."""
        ...

    def write(
        self,
        partition: int,
        states: States,
        positions: Positions,
        unindex: Iterable[bytes] = (),
        counts: CountsWrite | None = None,
    ) -> None:
        """Store ``states`` (each with its expiry index entry) and ``positions``, remove the
        index entries ``unindex``, and save ``counts``, in one atomic write. States written
        without counts make the saved counts void (their head is deleted)."""
        ...

    def load(self, partition: int, states: Mapping[bytes, bytes]) -> None:
        """Store ``states`` (each with its expiry index entry) in a partition with no positions,
        fast and not yet durable (no write-ahead log); ``loaded`` makes them durable. A recovery
        that reads a whole changelog partition into an empty store writes it this way."""
        ...

    def loaded(self, partition: int, positions: Positions) -> None:
        """Make what ``load`` wrote durable, then store ``positions``: a worker killed before
        this has no positions for the partition, and its next recovery starts it anew."""
        ...

    def expiring(self, partition: int, before: int, limit: int, start: bytes = b"") -> list[bytes]:
        """Up to ``limit`` expiry index entries from ``start`` on, of days before ordinal
        ``before``, oldest first. (The sweep passes the last entry it removed as ``start``, so
        that the deletions it made are not read past again.)"""
        ...

    def indexed(self, partition: int) -> bool:
        """Whether the partition's expiry index holds an entry for every state."""
        ...

    def index_all(self, partition: int) -> int:
        """Index every state of the partition (a store from before the index); returns how many."""
        ...

    def save_counts(self, partition: int, counts: CountsWrite) -> None:
        """Save ``counts`` (of the states stored now) alone, in one atomic write."""
        ...

    def saved_counts(self, partition: int) -> SavedCounts | None:
        """The partition's saved counts, if they count the states stored; else None."""
        ...

    def drop(self, partition: int) -> None:
        """Forget a partition's states and positions."""
        ...

    def partitions(self) -> list[int]:
        """Partitions with stored positions (a member prefers to be given these)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """The store in dictionaries: empty at every start."""

    def __init__(self) -> None:
        self._states: dict[int, dict[bytes, bytes]] = {}
        self._positions: dict[int, Positions] = {}
        #: partition -> ordinal day -> keys of the crimes indexed under that day
        self._index: dict[int, dict[int, set[bytes]]] = {}
        #: partition -> head of its saved counts (absent: void), and its combos
        self._heads: dict[int, bytes] = {}
        self._combos: dict[int, dict[bytes, bytes]] = {}

    def reader(self, partition: int) -> Callable[[bytes], bytes | None]:
        return self._states.setdefault(partition, {}).get

    def positions(self, partition: int) -> Positions | None:
        return self._positions.get(partition)

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._states.get(partition, {}).items()))

    def keys(self, partition: int, prefix: bytes) -> Iterator[bytes]:
        return iter(sorted(k for k in self._states.get(partition, {}) if k.startswith(prefix)))

    def write(
        self,
        partition: int,
        states: States,
        positions: Positions,
        unindex: Iterable[bytes] = (),
        counts: CountsWrite | None = None,
    ) -> None:
        table = self._states.setdefault(partition, {})
        index = self._index.setdefault(partition, {})
        for entry in unindex:
            day, key = index_entry(entry)
            index.get(day, set()).discard(key)
        for key, value in states.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
                index.setdefault(held_day(value), set()).add(key)
        self._positions[partition] = positions
        if counts is not None:
            self.save_counts(partition, counts)
        elif states:
            self._heads.pop(partition, None)

    def load(self, partition: int, states: Mapping[bytes, bytes]) -> None:
        table = self._states.setdefault(partition, {})
        index = self._index.setdefault(partition, {})
        table.update(states)
        for key, value in states.items():
            index.setdefault(held_day(value), set()).add(key)

    def loaded(self, partition: int, positions: Positions) -> None:
        self.write(partition, {}, positions)

    def save_counts(self, partition: int, counts: CountsWrite) -> None:
        combos = self._combos.setdefault(partition, {})
        if counts.whole:
            combos.clear()
        for key, value in counts.combos.items():
            if value is None:
                combos.pop(key, None)
            else:
                combos[key] = value
        self._heads[partition] = counts.head

    def saved_counts(self, partition: int) -> SavedCounts | None:
        head = self._heads.get(partition)
        if head is None:
            return None
        return SavedCounts(head, iter(sorted(self._combos.get(partition, {}).items())))

    def expiring(self, partition: int, before: int, limit: int, start: bytes = b"") -> list[bytes]:
        index = self._index.get(partition, {})
        out: list[bytes] = []
        for day in sorted(d for d in index if d < before):
            keys = index[day]
            if not keys:
                del index[day]
                continue
            out.extend(e for e in (index_key(day, k) for k in sorted(keys)) if e >= start)
            if len(out) >= limit:
                break
        return out[:limit]

    def indexed(self, partition: int) -> bool:
        return True

    def index_all(self, partition: int) -> int:
        return 0

    def drop(self, partition: int) -> None:
        self._states.pop(partition, None)
        self._positions.pop(partition, None)
        self._index.pop(partition, None)
        self._heads.pop(partition, None)
        self._combos.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._positions)

    def close(self) -> None:
        self._states.clear()
        self._positions.clear()
        self._index.clear()
        self._heads.clear()
        self._combos.clear()


def _is_states(family: str) -> bool:
    """Whether a column family holds crime states (``p<partition>``), not an index or meta."""
    return family.startswith("p") and family[1:].isdigit()


class RocksStore:
    """The store in RocksDB (rocksdict), one column family per partition."""

    def __init__(self, path: Path, deployment: Deployment) -> None:
        from rocksdict import Options, Rdict, WriteOptions

        self.path = path
        self._options = Options(raw_mode=True)
        self._options.create_if_missing(True)
        self._options.create_missing_column_families(True)
        families = self._existing_families()
        try:
            self._db: Any = Rdict(
                str(path),
                self._options,
                column_families={n: self._cf_options(_is_states(n)) for n in families},
            )
        except Exception as exc:  # rocksdict raises plain Exception with RocksDB's message
            if "lock" in str(exc).lower():
                raise ConfigError(
                    f"DW_DATA_DIR: the store {path} is in use by another worker; "
                    "give each worker its own DW_DATA_DIR"
                ) from None
            raise StateError(f"cannot open the store {path}: {exc}") from exc
        self._cfs: dict[str, Any] = {n: self._db.get_column_family(n) for n in families if n != "default"}
        if META not in self._cfs:
            self._cfs[META] = self._db.create_column_family(META, self._cf_options())
        stored = self._cfs[META].get(b"deployment")
        if stored is not None and stored != deployment.encode():
            log.warning(
                "the store %s belongs to another deployment (%s); wiping it, so every partition "
                "is restored from the changelog",
                path,
                stored.decode(errors="replace"),
            )
            for name in [n for n in self._cfs if n != META]:
                self._drop_family(name)
            self._cfs[META].delete_range(b"", b"\xff" * 8)
        self._cfs[META].put(b"deployment", deployment.encode())
        #: writes that skip the write-ahead log (``load``)
        self._unlogged: Any = WriteOptions()  # (the stubs have its properties as methods)
        self._unlogged.disable_wal = True
        self._unlogged.memtable_insert_hint_per_batch = True

    def _existing_families(self) -> list[str]:
        from rocksdict import Rdict

        if not (self.path / "CURRENT").exists():
            return []
        return list(Rdict.list_cf(str(self.path), self._options))

    @staticmethod
    def _cf_options(point_reads: bool = False) -> Any:
        """Options of a column family. Those of crime states (``point_reads``) keep a bloom
        filter in each table file (10 bits a key, about 1% false positives): the counting loop
        looks up every event's crime, and a crime not stored yet (most of a replay's) was
        otherwise sought in every table file: 7.9 us a lookup among a million crimes on disk,
        0.6 us with the filter (``bench/store_lookups.py``). Table files written before have no
        filter and are read as before."""
        from rocksdict import BlockBasedOptions, Options

        options = Options(raw_mode=True)
        if point_reads:
            table = BlockBasedOptions()
            table.set_bloom_filter(10, False)  # full filters (not block-based)
            options.set_block_based_table_factory(table)
        return options

    @staticmethod
    def _name(partition: int) -> str:
        return f"p{partition}"

    @staticmethod
    def _index_name(partition: int) -> str:
        return f"x{partition}"

    def _family(self, partition: int) -> Any:
        name = self._name(partition)
        cf = self._cfs.get(name)
        if cf is None:
            cf = self._cfs[name] = self._db.create_column_family(name, self._cf_options(point_reads=True))
            index = self._index_name(partition)
            if index not in self._cfs:  # a new partition: indexed from its first write
                self._cfs[index] = self._db.create_column_family(index, self._cf_options())
                self._cfs[META].put(index.encode(), b"1")
        return cf

    def _index(self, partition: int) -> Any:
        self._family(partition)
        name = self._index_name(partition)
        cf = self._cfs.get(name)
        if cf is None:  # a partition stored before the index: ``index_all`` completes it
            cf = self._cfs[name] = self._db.create_column_family(name, self._cf_options())
        return cf

    def _drop_family(self, name: str) -> None:
        if self._cfs.pop(name, None) is not None:
            self._db.drop_column_family(name)

    def reader(self, partition: int) -> Callable[[bytes], bytes | None]:
        get: Callable[[bytes], bytes | None] = self._family(partition).get
        return get

    def positions(self, partition: int) -> Positions | None:
        raw = self._cfs[META].get(self._name(partition).encode())
        return Positions(*_POSITIONS.unpack(raw)) if raw is not None else None

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        items: Iterator[tuple[bytes, bytes]] = self._family(partition).items()
        return items

    def keys(self, partition: int, prefix: bytes) -> Iterator[bytes]:
        for key in self._family(partition).keys(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield key

    def write(
        self,
        partition: int,
        states: States,
        positions: Positions,
        unindex: Iterable[bytes] = (),
        counts: CountsWrite | None = None,
    ) -> None:
        from rocksdict import WriteBatch

        self._index(partition)
        handle = self._db.get_column_family_handle(self._name(partition))
        index = self._db.get_column_family_handle(self._index_name(partition))
        batch = WriteBatch(raw_mode=True)
        for entry in unindex:  # first: an entry written below again stays
            batch.delete(entry, index)
        for key, value in states.items():
            if value is None:
                batch.delete(key, handle)
            else:
                batch.put(key, value, handle)
                batch.put(index_key(held_day(value), key), b"", index)
        meta = self._db.get_column_family_handle(META)
        batch.put(
            self._name(partition).encode(),
            _POSITIONS.pack(positions.source_next, positions.changelog_next),
            meta,
        )
        if counts is not None:
            self._put_counts(batch, partition, counts)
        elif states:
            batch.delete(self._counts_key(partition), meta)  # the saved counts no longer hold
        self._write(batch)

    def load(self, partition: int, states: Mapping[bytes, bytes]) -> None:
        from rocksdict import WriteBatch

        self._index(partition)
        handle = self._db.get_column_family_handle(self._name(partition))
        index = self._db.get_column_family_handle(self._index_name(partition))
        batch = WriteBatch(raw_mode=True)
        for key, value in states.items():
            batch.put(key, value, handle)
        # in key order, as the caller gives the states: the memtable takes a run of keys in
        # order faster than the same keys at random (a third less time, bench/restore.py)
        for entry in sorted([index_key(held_day(value), key) for key, value in states.items()]):
            batch.put(entry, b"", index)
        self._write(batch, self._unlogged)

    def loaded(self, partition: int, positions: Positions) -> None:
        # the states first: positions durable before them would claim states a crash lost
        self._family(partition).flush()
        self._index(partition).flush()
        self.write(partition, {}, positions)

    @staticmethod
    def _counts_name(partition: int) -> str:
        """The partition's saved counts: its column family, and its head's key in ``meta``."""
        return f"k{partition}"

    def _counts_key(self, partition: int) -> bytes:
        return self._counts_name(partition).encode()

    def _counts_family(self, partition: int) -> Any:
        name = self._counts_name(partition)
        cf = self._cfs.get(name)
        if cf is None:
            cf = self._cfs[name] = self._db.create_column_family(name, self._cf_options())
        return cf

    def _put_counts(self, batch: Any, partition: int, counts: CountsWrite) -> None:
        """Add ``counts`` to ``batch``: the combos (after deleting every other, when whole),
        then the head."""
        family = self._counts_family(partition)
        handle = self._db.get_column_family_handle(self._counts_name(partition))
        if counts.whole:
            for key in family.keys():  # noqa: SIM118 (an Rdict has no __iter__)
                if key not in counts.combos:
                    batch.delete(key, handle)
        for key, value in counts.combos.items():
            if value is None:
                batch.delete(key, handle)
            else:
                batch.put(key, value, handle)
        meta = self._db.get_column_family_handle(META)
        batch.put(self._counts_key(partition), counts.head, meta)
        batch.delete(f"c{partition}".encode(), meta)  # what an older version saved at a stop

    def save_counts(self, partition: int, counts: CountsWrite) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        self._put_counts(batch, partition, counts)
        self._write(batch)

    def saved_counts(self, partition: int) -> SavedCounts | None:
        head: bytes | None = self._cfs[META].get(self._counts_key(partition))
        if head is None:
            return None
        items: Iterator[tuple[bytes, bytes]] = self._counts_family(partition).items()
        return SavedCounts(head, items)

    def _write(self, batch: Any, options: Any = None) -> None:
        """One atomic write; a full or read-only disk raises ``StorageError``."""
        try:
            self._db.write(batch, options)
        except Exception as exc:  # rocksdict raises plain Exception with RocksDB's message
            full = _storage_error(self.path, exc)
            if full is None:
                raise
            raise full from exc

    def expiring(self, partition: int, before: int, limit: int, start: bytes = b"") -> list[bytes]:
        edge = _DAY.pack(before)
        out: list[bytes] = []
        for entry in self._index(partition).keys(from_key=start):
            if entry >= edge or len(out) >= limit:
                break
            out.append(bytes(entry))
        return out

    def indexed(self, partition: int) -> bool:
        return self._cfs[META].get(self._index_name(partition).encode()) is not None

    def index_all(self, partition: int) -> int:
        from rocksdict import WriteBatch

        self._index(partition)
        handle = self._db.get_column_family_handle(self._index_name(partition))
        n = 0
        batch = WriteBatch(raw_mode=True)
        for key, value in self._family(partition).items():
            batch.put(index_key(held_day(value), key), b"", handle)
            n += 1
            if n % 50_000 == 0:
                self._write(batch)
                batch = WriteBatch(raw_mode=True)
        self._write(batch)
        self._cfs[META].put(self._index_name(partition).encode(), b"1")
        return n

    def drop(self, partition: int) -> None:
        self._drop_family(self._name(partition))
        self._drop_family(self._index_name(partition))
        self._drop_family(self._counts_name(partition))
        for key in (
            self._name(partition),
            self._index_name(partition),
            self._counts_name(partition),
            f"c{partition}",
        ):
            self._cfs[META].delete(key.encode())

    def partitions(self) -> list[int]:
        out = []
        for key in self._cfs[META].keys():  # noqa: SIM118 (an Rdict has no __iter__)
            name = bytes(key).decode()
            if name.startswith("p") and name[1:].isdigit():
                out.append(int(name[1:]))
        return sorted(out)

    def close(self) -> None:
        self._cfs.clear()
        self._db.close()


def _storage_error(path: Path, exc: Exception) -> StorageError | None:
    """``StorageError`` when RocksDB says the disk is full or read-only; else None."""
    text = str(exc)
    for marker, why in (("No space left", "the disk is full"), ("Read-only file system", "read-only")):
        if marker in text:
            return StorageError(f"DW_DATA_DIR: cannot write the store {path}: {why} ({shorten(text)})")
    return None


def open_store(kind: str, data_dir: Path, deployment: Deployment) -> Store:
    """The store ``DW_STORE`` names, opened."""
    if kind == "memory":
        return MemoryStore()
    return RocksStore(data_dir / "store", deployment)
