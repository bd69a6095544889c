"""The worker's partition of a key is Kafka's default partitioner's."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2

from streams.core.partitioner import partition_of


def test_partition_of_is_kafkas_default_partitioner() -> None:
    rng = random.Random(7)
    keys = [b"", b"kent/KE/24/1", "dyfed-powys/ünï/9".encode()]
    keys += [rng.randbytes(rng.randint(1, 60)) for _ in range(5000)]
    for n in (1, 3, 8, 17):
        for key in keys:  # kafka-python's DefaultPartitioner.partition, on keyed records
            assert partition_of(key, n) == (murmur2(key) & 0x7FFFFFFF) % n, (key, n)
