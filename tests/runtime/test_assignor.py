"""The assignor's plan: every partition once, balanced, and state left where it is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.runtime.assignor import MembershipAssignor, plan
from streams.wire import MemberInfo, Membership, decode_member, decode_membership, encode_member


@pytest.mark.parametrize(
    ("partitions", "members", "expected"),
    [
        (range(4), {"a": MemberInfo("u")}, {"a": [0, 1, 2, 3]}),
        (range(4), {"a": MemberInfo("u"), "b": MemberInfo("v")}, {"a": [0, 2], "b": [1, 3]}),
        # the last owners keep their partitions
        (
            range(4),
            {"a": MemberInfo("u", owned=(1, 3)), "b": MemberInfo("v", owned=(0, 2))},
            {"a": [1, 3], "b": [0, 2]},
        ),
        # a newcomer takes what balance needs, first what it holds in its store
        (
            range(4),
            {"a": MemberInfo("u", owned=(0, 1, 2, 3)), "b": MemberInfo("v", held=(3,))},
            {"a": [0, 1], "b": [2, 3]},
        ),
        (
            range(5),
            {"a": MemberInfo("u", owned=(0, 1, 2, 3, 4)), "b": MemberInfo("v", held=(4,))},
            {"a": [0, 1, 2], "b": [3, 4]},
        ),
        # the member that died held 2 and 3: they go to the one left
        (range(4), {"b": MemberInfo("v", owned=(0, 1))}, {"b": [0, 1, 2, 3]}),
        # more members than partitions: some get none
        (
            range(2),
            {"a": MemberInfo("u"), "b": MemberInfo("v"), "c": MemberInfo("w")},
            {"a": [0], "b": [1], "c": []},
        ),
    ],
)
def test_plan(partitions: range, members: dict[str, MemberInfo], expected: dict[str, list[int]]) -> None:
    assert plan(list(partitions), members) == expected


@given(
    st.integers(1, 24),
    st.lists(
        st.tuples(st.sets(st.integers(0, 30), max_size=8), st.sets(st.integers(0, 30), max_size=8)),
        min_size=1,
        max_size=7,
    ),
)
def test_plan_assigns_each_partition_once_and_balances(
    n: int, prefs: list[tuple[set[int], set[int]]]
) -> None:
    members = {f"m{i}": MemberInfo(f"u{i}", tuple(o), tuple(h)) for i, (o, h) in enumerate(prefs)}
    got = plan(list(range(n)), members)
    assigned = sorted(p for ps in got.values() for p in ps)
    assert assigned == list(range(n))
    sizes = [len(ps) for ps in got.values()]
    assert max(sizes) - min(sizes) <= 1
    # a partition its unique previous owner still has room for stays with it
    for m, info in members.items():
        others_owned = {p for k, i in members.items() if k != m for p in i.owned}
        for p in info.owned:
            if p < n and p not in others_owned and len([q for q in info.owned if q < n]) <= n // len(members):
                assert p in got[m]


def test_member_and_membership_round_trip_and_tolerate_garbage() -> None:
    info = MemberInfo("http://h:1", (0, 2), (1,))
    assert decode_member(encode_member(info)) == info
    assert decode_member(b"\xff not json") == MemberInfo("")
    assert decode_membership(None) == Membership()


def test_assignor_sends_every_member_the_whole_map() -> None:
    seen: list[Membership] = []
    a = MembershipAssignor(lambda: MemberInfo("http://a:1"), seen.append)
    b = MembershipAssignor(lambda: MemberInfo("http://b:2", owned=(3,)), seen.append)
    members = {"ma": a.metadata(["disposals"]), "mb": b.metadata(["disposals"])}
    cluster = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2, 3})
    out = a.assign(cluster, members)
    assert sorted(tp.partition for tp in out["mb"].partitions()) == [2, 3]
    a.on_assignment(out["ma"])
    b.on_assignment(out["mb"])
    assert (
        seen[0] == seen[1] == Membership({0: "http://a:1", 1: "http://a:1", 2: "http://b:2", 3: "http://b:2"})
    )
