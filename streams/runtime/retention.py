"""Retention: crimes whose latest outcome has left the horizon leave the store and the changelog.

The counts forget a day's cells as soon as the horizon passes it (``DayCounts.prune``; the
horizon is ``DW_RETENTION_DAYS`` before the partition's today). The crimes in those cells stay
in the store and the changelog until this sweep removes them, so disk, memory and restore time
follow the crimes within the horizon, not the years the system has run.

``sweep`` runs under the loop's lock right before each checkpoint. Per owned partition whose
horizon has moved since it was last swept to, it reads the store's expiry index
(``streams.runtime.store``) from its oldest entry up to the horizon, at most ``budget`` entries
per checkpoint in all (``sweep_budget``: in proportion to the records processed since the last
checkpoint; a replay of years moves the horizon by days a second; the rest waits for the next
checkpoint, which an idle worker makes at once while a sweep is ``behind``). For each entry (a
crime key and the day it was indexed under):

- the crime has changed since the last checkpoint: its pending state decides (below); the
  entry is stale;
- else its stored state decides: before the horizon, it **expires**; at or after it (the crime
  moved to a later day), or gone (deleted before), the entry is stale.

Changed crimes of such a partition whose day the horizon has passed since they changed expire
too (taken out of the pending changes): written after the sweep, their entries would lie behind
the swept part of the index. Events before the horizon are dead-lettered, so no crime is changed
to a day already swept past.

An expired crime is sent as a tombstone to the changelog and deleted from the store, and every
entry read is removed from the index, all in the checkpoint (``Checkpoint.commit``): in its
transaction and its atomic store write. A crash before the checkpoint leaves everything as it
was, for the next sweep. Expiry never changes a count: cells before the horizon are not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from streams.codec import held_day
from streams.runtime.partition import PartitionState
from streams.runtime.store import Store, index_entry

#: expiry index entries read per checkpoint at least, over every partition (about 3 us each)
SWEEP_PER_CHECKPOINT = 20_000
#: ... and per record processed since the last checkpoint: each record writes at most one state,
#: and so one index entry, so a sweep that reads twice as many keeps pace with any replay (a
#: fixed budget fell behind a replay of years at 30,000 events/s: 1.6 crimes stored for each one
#: held at its end)
SWEEP_PER_RECORD = 2


def sweep_budget(records: int) -> int:
    """Index entries the sweep before a checkpoint may read, ``records`` processed since the last."""
    return max(SWEEP_PER_CHECKPOINT, SWEEP_PER_RECORD * records)


def behind(parts: Mapping[int, PartitionState]) -> bool:
    """Whether a partition's sweep has not reached its horizon yet (an idle worker checkpoints at
    once to go on with it, rather than a budget per checkpoint interval)."""
    return any(
        part.counts.floor is not None and part.swept_to < part.counts.floor.toordinal()
        for part in parts.values()
    )


def sweep(parts: Mapping[int, PartitionState], store: Store, budget: int = SWEEP_PER_CHECKPOINT) -> int:
    """Mark the expired crimes of ``parts`` for the next checkpoint; returns entries read."""
    read_total = 0
    for p, part in parts.items():
        floor = part.counts.floor
        if floor is None or budget <= read_total:
            continue
        before = floor.toordinal()
        if part.swept_to >= before:
            continue
        stored = store.reader(p)
        expired = _expire_pending(part, before, stored)
        limit = budget - read_total
        entries = store.expiring(p, before, limit, part.sweep_from)
        read_total += len(entries)
        pending = part.pending
        for entry in entries:
            part.unindex.append(entry)
            _, key = index_entry(entry)
            if key in pending or key in expired:  # decided by its pending state
                continue
            raw = stored(key)
            if raw is not None and held_day(raw) < before:
                expired.add(key)  # once, though the crime may have more entries before the horizon
                part.expired.append(key)
                part.gone += 1
        if entries:
            part.sweep_from = entries[-1]
        if len(entries) < limit:
            part.swept_to = before
    return read_total


def _expire_pending(part: PartitionState, before: int, stored: Callable[[bytes], bytes | None]) -> set[bytes]:
    """Changed crimes whose day the horizon has passed since they changed expire now: they would
    be written after the index had been swept past their day. Returns their keys."""
    late = [key for key, held in part.pending.items() if held.cell.day.toordinal() < before]
    for key in late:
        del part.pending[key]
        part.expired.append(key)
        if stored(key) is None:  # new since the last checkpoint: never stored
            part.fresh -= 1
        else:
            part.gone += 1
    return set(late)
