"""Notifications grouped per rule and force: one call per group per interval, nothing lost."""

from __future__ import annotations

from alerts.grouping import Groups


def t(offset: int, rule: str, force: str, fp: str, state: str) -> tuple[int, dict[str, object]]:
    return offset, {"id": offset, "rule_id": rule, "force_id": force, "fingerprint": fp, "state": state}


def test_a_group_collects_its_transitions_and_is_due_after_its_wait() -> None:
    g = Groups(wait_s=30)
    for offset, entry in (
        t(10, "r1", "kent", "a", "firing"),
        t(12, "r1", "essex", "b", "firing"),
        t(14, "r1", "kent", "c", "firing"),
        t(16, "r1", "kent", "a", "resolved"),  # a flip: the group carries the latest state
    ):
        g.add(offset, entry, now=0.0)
    g.skip(18)  # another force's transition, for another receiver
    assert g.due(29.9) == [] and g.commit_offset() == 10
    kent, essex = g.due(30.0)
    assert kent.payload() == {
        "rule_id": "r1",
        "force_id": "kent",
        "alerts": [t(14, "r1", "kent", "c", "firing")[1], t(16, "r1", "kent", "a", "resolved")[1]],
        "transition_ids": [10, 14, 16],
    }
    assert essex.payload()["transition_ids"] == [12]
    g.done(kent)
    assert g.commit_offset() == 12  # essex is not delivered yet: its transitions are kept
    g.done(essex)
    assert g.commit_offset() == 19 and len(g) == 0


def test_a_transition_after_delivery_opens_a_new_group() -> None:
    g = Groups(wait_s=5)
    g.add(*t(1, "r", "kent", "a", "firing"), now=0.0)
    (first,) = g.due(5.0)
    g.done(first)
    g.add(*t(2, "r", "kent", "a", "resolved"), now=6.0)
    assert g.due(10.0) == [] and [x.first_offset for x in g.due(11.0)] == [2]


def test_a_failed_delivery_holds_every_group_back_while_transitions_keep_joining() -> None:
    g = Groups(wait_s=2, first_backoff_s=0.5, max_backoff_s=1)
    g.add(*t(1, "r", "kent", "a", "firing"), now=0.0)
    g.add(*t(2, "r", "essex", "b", "firing"), now=0.0)
    kent, _ = g.due(2.0)
    assert g.failed(2.0) == 0.5 and g.due(2.4) == []  # the receiver is down: backing off
    g.add(*t(3, "r", "kent", "a", "resolved"), now=2.4)  # read meanwhile: joins the waiting group
    assert g.failed(2.5) == 1 and g.failed(3.5) == 1 and g.due(4.4) == []  # doubles to the ceiling
    kent, essex = g.due(4.5)
    assert kent.payload()["transition_ids"] == [1, 3] and essex.payload()["transition_ids"] == [2]
    g.done(kent)
    assert g.commit_offset() == 2
    assert g.failed(5.0) == 0.5  # a success resets the backoff
