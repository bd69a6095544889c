"""Which partition a crime belongs to: Kafka's default partitioner for keyed records.

Java's clients, kafka-python and this project's producer (librdkafka's ``murmur2_random``) put a
record with a key on ``toPositive(murmur2(key)) % partitions``. A crime's state lives on the
partition its key picks, so a record of it that arrived on another partition (a producer with
librdkafka's default ``consistent_random``, CRC32, or null keys, or explicit partitions) must not
count where it landed: the worker dead-letters it (``RejectedEvent`` reason ``wrong_partition``).

``murmurhash2`` (C) gives the same 32-bit MurmurHash2 as Kafka's with Kafka's seed; the
project's test holds it equal to kafka-python's own partitioner.
"""

from __future__ import annotations

from murmurhash2 import murmurhash2

#: Kafka's seed for murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``)
SEED = 0x9747B28C


def partition_of(key: bytes, partitions: int) -> int:
    return (murmurhash2(key, SEED) & 0x7FFFFFFF) % partitions
