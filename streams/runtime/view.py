"""What the rest of the worker reads of its counting loop, and nothing more.

The cluster's fan-out (``streams.cluster``), the alert evaluator, and the health and peer pages
read the local worker's state through ``WorkerState``: the partitions it owns with their counts,
whether it is restoring, how far it has read, and who the group's members are. They never see
the loop's Kafka clients, its checkpoint or its lock; only the composition root (``streams.app``)
and the runtime itself know ``CountingLoop``, which is one such state (checked by mypy where the
root hands it over, and by ``tests/unit/test_layout.py``: no module outside ``streams.runtime``
but the root imports it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol

from streams.runtime.partition import PartitionState
from streams.runtime.store import Store
from streams.schema_registry import Schemas
from streams.wire import Membership


class WorkerState(Protocol):
    """The local worker, as the cluster, the evaluator and the pages read it."""

    #: owned partitions of the source topic -> their counts and positions
    @property
    def partitions(self) -> Mapping[int, PartitionState]: ...

    #: True from a revocation until every assigned partition is restored (figures are partial)
    @property
    def recovering(self) -> bool: ...

    #: records taken from the source topic since start (accepted or rejected)
    @property
    def records_processed(self) -> int: ...

    #: which member owns which partition, as the group leader assigned them
    @property
    def membership(self) -> Membership: ...

    #: the crimes' states (read for evidence and re-identification)
    @property
    def store(self) -> Store: ...

    #: the registry's schemas (DW_SCHEMA_REGISTRY_URL), None without one
    @property
    def schemas(self) -> Schemas | None: ...

    def is_leader(self) -> bool:
        """Whether this worker writes the alerts (it owns partition 0)."""
        ...

    def newest(self) -> dt.date | None:
        """The newest outcome date held (the stream clock), None when nothing is held."""
        ...

    def backlog(self) -> int:
        """Records of the owned partitions not processed yet, as last seen."""
        ...

    def caught_up(self) -> bool:
        """Whether partitions are owned, each fetched from, and all fetched processed."""
        ...
