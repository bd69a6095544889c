"""Group membership without Faust's table router: who owns which partition, at which URL.

As Kafka Streams does with ``application.server``, each member puts its URL in its subscription
user data (``streams.wire.MemberInfo``); the group leader's assignor plans the partitions and
writes the whole map, partition -> owner URL, into every member's assignment user data
(``streams.wire.Membership``). So every member learns who to ask for the other partitions'
counts, and who leads alert evaluation (the owner of partition 0).

``plan`` is pure: a balanced assignment (every member gets ``P // M`` or one more) that keeps a
partition with the member that owned it in the last generation, else with one that holds its
state in a local store, so a rebalance moves as little state as it can.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from streams.wire import (
    MemberInfo,
    Membership,
    decode_member,
    decode_membership,
    encode_member,
    encode_membership,
)

log = logging.getLogger(__name__)


def plan(partitions: Sequence[int], members: Mapping[str, MemberInfo]) -> dict[str, list[int]]:
    """member id -> partitions: each partition once; each member ``P // M`` or ``P // M + 1``;
    partitions stay with their last owner, else with a member holding their state, where the
    balance allows."""
    ids = sorted(members)
    if not ids:
        return {}
    base, extra = divmod(len(partitions), len(ids))
    given: dict[str, list[int]] = {m: [] for m in ids}
    taken: set[int] = set()
    wanted = set(partitions)
    full = 0  # members holding base + 1

    def room(m: str) -> bool:
        k = len(given[m])
        return k < base or (k == base and full < extra)

    def give(m: str, p: int) -> None:
        nonlocal full
        given[m].append(p)
        taken.add(p)
        if len(given[m]) == base + 1:
            full += 1

    for preference in ("owned", "held"):
        for m in ids:
            info = members[m]
            for p in sorted(info.owned if preference == "owned" else info.held):
                if p in wanted and p not in taken and room(m):
                    give(m, p)
    for p in sorted(wanted - taken):
        give(min((m for m in ids if room(m)), key=lambda m: (len(given[m]), m)), p)
    return {m: sorted(ps) for m, ps in given.items()}


class MembershipAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """aiokafka's partition assignor protocol around ``plan``.

    ``me`` gives this member's info at each join; ``on_membership`` receives the map at each
    assignment (before the consumer's rebalance listener runs)."""

    name = "disposal-watch"
    version = 1

    def __init__(self, me: Callable[[], MemberInfo], on_membership: Callable[[Membership], None]) -> None:
        self._me = me
        self._on_membership = on_membership

    def metadata(self, topics: Iterable[str]) -> Any:
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), encode_member(self._me()))

    def assign(self, cluster: Any, members: Mapping[str, Any]) -> dict[str, Any]:
        infos = {m: decode_member(meta.user_data) for m, meta in members.items()}
        topics = sorted({t for meta in members.values() for t in meta.subscription})
        plans: dict[str, dict[str, list[int]]] = {m: {} for m in members}
        owners: dict[int, str] = {}
        for topic in topics:
            parts = sorted(cluster.partitions_for_topic(topic) or ())
            if not parts:
                log.warning("no partition metadata for topic %s", topic)
                continue
            for m, ps in plan(parts, infos).items():
                plans[m][topic] = ps
                owners.update((p, infos[m].url) for p in ps)
        data = encode_membership(Membership(owners))
        log.info("assigned partitions: %s", {infos[m].url or m: ps for m, ps in plans.items()})
        return {
            m: ConsumerProtocolMemberAssignment(self.version, sorted(ps.items()), data)
            for m, ps in plans.items()
        }

    def on_assignment(self, assignment: Any) -> None:
        self._on_membership(decode_membership(assignment.user_data))
