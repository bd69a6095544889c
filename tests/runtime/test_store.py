"""Both stores keep crime states and positions per partition, written together."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.codec import encode_held
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.errors import ConfigError
from streams.runtime.saved_counts import CountsWrite
from streams.runtime.store import Deployment, MemoryStore, Positions, RocksStore, Store

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = Deployment("dw", "dw-crimes-changelog", 4)


def state(n: int) -> bytes:
    """A crime state as the loop stores it (the store indexes it by its day)."""
    return encode_held(Held(Cell("kent", "stalking", "charge", dt.date(2025, 1, n), False), (n,), n), 0)


S1, S2, S3, S4 = state(1), state(2), state(3), state(4)


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else RocksStore(tmp_path / "store", DEPLOYMENT)
    yield s
    s.close()


def test_states_and_positions_per_partition(store: Store) -> None:
    assert store.positions(0) is None and store.partitions() == []
    store.write(0, {b"a": S1, b"b": S2}, Positions(10, 2))
    store.write(3, {b"a": S4}, Positions(4, 1))
    store.write(0, {b"a": None, b"c": S3}, Positions(12, 3))  # None deletes
    assert store.positions(0) == Positions(12, 3) and store.positions(3) == Positions(4, 1)
    assert sorted(store.items(0)) == [(b"b", S2), (b"c", S3)]
    get = store.reader(0)
    assert get(b"b") == S2 and get(b"a") is None and store.reader(3)(b"a") == S4
    assert store.partitions() == [0, 3]
    store.drop(0)
    assert store.positions(0) is None and list(store.items(0)) == [] and store.partitions() == [3]


def test_a_load_has_no_positions_until_loaded(store: Store) -> None:
    store.load(2, {b"a": S1, b"b": S3})
    assert store.positions(2) is None and sorted(store.items(2)) == [(b"a", S1), (b"b", S3)]
    store.loaded(2, Positions(0, 9))
    assert store.positions(2) == Positions(0, 9) and store.partitions() == [2]
    assert [e[4:] for e in store.expiring(2, dt.date(2025, 1, 3).toordinal(), 10)] == [b"a"]


KILLED_AFTER = """
import os, sys
from pathlib import Path
from streams.runtime.store import Positions, RocksStore
from tests.runtime.test_store import DEPLOYMENT, S1
s = RocksStore(Path(sys.argv[1]), DEPLOYMENT)
s.load(1, {b"k": S1})
if sys.argv[2] == "loaded":
    s.loaded(1, Positions(0, 4))
s.write(2, {b"j": S1}, Positions(3, 1))  # another partition's logged write after the load
os._exit(0)  # as if killed: nothing closed or flushed
"""


@pytest.mark.parametrize("step", ["loaded", "load"])
def test_a_rocks_load_killed_before_loaded_leaves_no_positions_and_after_it_is_durable(
    tmp_path: Path, step: str
) -> None:
    path = tmp_path / "store"
    subprocess.run([sys.executable, "-c", KILLED_AFTER, str(path), step], check=True, cwd=ROOT)
    s = RocksStore(path, DEPLOYMENT)
    assert s.positions(2) == Positions(3, 1) and list(s.items(2)) == [(b"j", S1)]
    if step == "loaded":
        assert s.positions(1) == Positions(0, 4) and list(s.items(1)) == [(b"k", S1)]
    else:  # its next recovery reads the partition again, from an empty store
        assert s.positions(1) is None
    s.close()


def test_rocks_store_survives_a_reopen_and_refuses_a_second_opener(tmp_path: Path) -> None:
    s = RocksStore(tmp_path / "store", DEPLOYMENT)
    s.write(1, {b"k": S1}, Positions(7, 5))
    with pytest.raises(ConfigError, match="in use by another worker"):
        RocksStore(tmp_path / "store", DEPLOYMENT)
    s.close()
    s = RocksStore(tmp_path / "store", DEPLOYMENT)
    assert s.positions(1) == Positions(7, 5) and list(s.items(1)) == [(b"k", S1)]
    s.close()


def test_rocks_store_of_another_deployment_is_wiped(tmp_path: Path) -> None:
    s = RocksStore(tmp_path / "store", DEPLOYMENT)
    s.write(1, {b"k": S1}, Positions(7, 5))
    s.close()
    s = RocksStore(tmp_path / "store", Deployment("dw", "dw-crimes-changelog", 8))
    assert s.partitions() == [] and s.positions(1) is None and list(s.items(1)) == []
    s.close()


def test_keys_of_one_force(store: Store) -> None:
    store.write(0, dict.fromkeys([b"kent/2", b"kent/1", b"kentish/1", b"essex/1"], S1), Positions(1, 1))
    assert list(store.keys(0, b"kent/")) == [b"kent/1", b"kent/2"]
    assert list(store.keys(0, b"zzz/")) == [] and list(store.keys(3, b"kent/")) == []


def _saved(store: Store, partition: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    saved = store.saved_counts(partition)
    return None if saved is None else (saved.head, list(saved.combos))


def test_saved_counts_change_with_each_write_and_go_with_crimes_written_without_them(
    tmp_path: Path,
) -> None:
    for store in (MemoryStore(), RocksStore(tmp_path / "store", DEPLOYMENT)):
        store.write(0, {b"a": S1}, Positions(1, 1), counts=CountsWrite(b"h1", {b"x": b"1", b"y": b"2"}))
        store.write(1, {b"a": S1}, Positions(1, 1), counts=CountsWrite(b"one", {b"x": b"9"}))
        assert _saved(store, 0) == (b"h1", [(b"x", b"1"), (b"y", b"2")]) and _saved(store, 2) is None
        # a checkpoint's changes: one combo changed, one emptied, one new, in the crimes' write
        store.write(
            0, {b"b": S2}, Positions(2, 2), counts=CountsWrite(b"h2", {b"x": b"3", b"y": None, b"z": b"4"})
        )
        assert _saved(store, 0) == (b"h2", [(b"x", b"3"), (b"z", b"4")])
        store.write(0, {}, Positions(3, 3))  # positions alone: the crimes, and so the counts, hold
        assert _saved(store, 0) == (b"h2", [(b"x", b"3"), (b"z", b"4")])
        store.write(0, {b"c": S1}, Positions(4, 4))  # crimes without counts: the counts are void
        assert _saved(store, 0) is None and _saved(store, 1) == (b"one", [(b"x", b"9")])
        store.save_counts(0, CountsWrite(b"h3", {b"w": b"5"}, whole=True))  # derived again, whole
        assert _saved(store, 0) == (b"h3", [(b"w", b"5")])
        assert store.partitions() == [0, 1]
        if isinstance(store, RocksStore):  # kept across a reopen
            store.close()
            store = RocksStore(tmp_path / "store", DEPLOYMENT)
            assert _saved(store, 0) == (b"h3", [(b"w", b"5")])
        store.drop(0)
        assert _saved(store, 0) is None and _saved(store, 1) == (b"one", [(b"x", b"9")])
        store.close()


def _filters(path: Path) -> dict[str, str]:
    """Column family -> its table files' filter policy, from the store's newest OPTIONS file."""
    text = sorted(path.glob("OPTIONS-*"))[-1].read_text()
    return dict(
        re.findall(r'\[TableOptions/BlockBasedTable "([^"]+)"\]\n(?:[^\[]*\n)*?\s*filter_policy=(\S+)', text)
    )


def test_crime_states_keep_a_bloom_filter_and_keep_it_on_reopen(tmp_path: Path) -> None:
    """A lookup of a crime not stored (most of a replay's) is answered by the filter instead of
    a search of every table file (bench/store_lookups.py)."""
    s = RocksStore(tmp_path / "store", DEPLOYMENT)
    s.write(0, {b"kent/1": S1}, Positions(1, 1))
    s.close()
    s = RocksStore(tmp_path / "store", DEPLOYMENT)
    s.close()
    filters = _filters(tmp_path / "store")
    assert filters["p0"].startswith("bloomfilter"), filters
    assert filters["x0"] == "nullptr" and filters["meta"] == "nullptr", filters  # range reads only
