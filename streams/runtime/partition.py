"""One partition the worker owns: its derived counts, the crimes changed since the last
checkpoint, and where it stands in the source topic and the changelog."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.core.buckets import DayCounts
from streams.core.crimes import Held
from streams.runtime.saved_counts import CountsLog


@dataclass(slots=True)
class PartitionState:
    partition: int
    #: counts of the crimes the partition holds: read back or derived at assignment, then moved
    #: with every change, and saved with the crimes at each checkpoint
    counts: DayCounts
    #: next changelog offset not yet in the store
    changelog_next: int
    #: crimes changed since the last checkpoint: read before the store, written at the checkpoint
    pending: dict[bytes, Held] = field(default_factory=dict)
    #: offset after the last source record processed (None: none yet since assignment)
    processed: int | None = None
    #: the group's committed offset for this partition (None: none yet)
    committed: int | None = None
    #: crimes in the local store (counted at restore, then moved at each checkpoint)
    store_crimes: int = 0
    #: crimes new to the store among the pending changes
    fresh: int = 0
    # the retention sweep's work for the next checkpoint (``streams.runtime.retention``):
    #: crimes that expire (a changelog tombstone and a store delete each)
    expired: list[bytes] = field(default_factory=list)
    #: how many of them are in the store
    gone: int = 0
    #: expiry index entries read, to remove
    unindex: list[bytes] = field(default_factory=list)
    #: the horizon (ordinal day) the index has been swept to, and the last entry read
    swept_to: int = 0
    sweep_from: bytes = b""
    #: how the counts are saved with each checkpoint (``streams.runtime.saved_counts``)
    saved: CountsLog = field(default_factory=CountsLog)
