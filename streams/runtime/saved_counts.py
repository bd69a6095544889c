"""Counts saved at a clean stop, so that a restart on a kept store need not derive them again.

Deriving a partition's counts reads and decodes every crime its store holds: at national volume
(6.6 million crimes within a 400-day horizon) that took 30 s of a 38 s restart. So after the
last checkpoint before the worker stops, and before it hands partitions over in a rebalance,
each partition's counts (``DayCounts.state``: counts per force x category x class x flag and
day, the evidence kept, the stream clock and floor) and the number of crimes its store holds
are saved in the store (``Store.save_counts``), in one marshalled value.

The partition's next store write deletes them in the same atomic write (``Store.write``), so
saved counts exist only while they describe exactly the crimes stored. A worker killed (SIGKILL,
a lost machine) has none for the partitions it changed since, and derives those. This is Kafka
Streams' rule for its ``.checkpoint`` file under exactly-once, written at a clean close only.

``marshal`` is used because it reads back dictionaries of strings and numbers at C speed (the
counts of a partition of a national deployment in about 50 ms); it is the Python version's own
format, so a value it cannot read (another interpreter) is ignored and the counts are derived.
"""

from __future__ import annotations

import logging
import marshal

from streams.core.buckets import CountSink, DayCounts

log = logging.getLogger(__name__)


def encode(counts: DayCounts, store_crimes: int) -> bytes:
    return marshal.dumps((counts.state(), store_crimes))


def decode(data: bytes, sink: CountSink | None, partition: int) -> tuple[DayCounts, int] | None:
    """The counts and store size saved; None (logged) when they cannot be read: derive them."""
    try:
        state, store_crimes = marshal.loads(data)
        return DayCounts.from_state(state, sink), int(store_crimes)
    except (ValueError, EOFError, TypeError) as exc:
        log.warning("partition %d: the saved counts cannot be read (%s); deriving them", partition, exc)
        return None
