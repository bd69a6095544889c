"""Both stores keep crime states and positions per partition, written together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.codec import encode_held
from streams.core.classify import Cell
from streams.core.crimes import Held
from streams.errors import ConfigError
from streams.runtime.store import Deployment, MemoryStore, Positions, RocksStore, Store

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
