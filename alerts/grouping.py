"""Grouped notifications: one call per group (rule x force) per interval, as Alertmanager's
``group_by`` and ``group_wait`` do, not one per case or per flip.

Transitions arrive in topic order (``add``). A group collects the transitions of one rule and
force; it is due ``wait_s`` after its first transition (``due``), and then carries every
transition it collected: the latest state of each of its alerts, and the ids (topic offsets)
of all the transitions, so a receiver can drop what it has seen. Groups are due in the order
of their first transition. ``commit_offset`` is where a consumer may commit: the first offset
of the oldest group not yet delivered, or past everything read. So nothing is lost when a
process dies with groups waiting: they are read and grouped again.

A delivery that fails (``failed``) holds every group back, oldest first, for a backoff that
doubles up to a ceiling, and is reset by a success. Transitions read meanwhile still join their
groups, so a receiver that was down gets one call per rule and force when it is back, each with
everything that happened while it was down, not one call per interval it missed.

Pure: the caller supplies the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: (rule id, force id)
GroupKey = tuple[str, str]


@dataclass
class Group:
    key: GroupKey
    first_offset: int
    opened_at: float
    #: fingerprint -> the latest transition of that alert, in the order alerts first appeared
    latest: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    offsets: list[int] = field(default_factory=list)

    def alerts(self) -> list[Mapping[str, Any]]:
        return list(self.latest.values())

    def payload(self) -> dict[str, Any]:
        rule_id, force_id = self.key
        return {
            "rule_id": rule_id,
            "force_id": force_id,
            "alerts": self.alerts(),
            "transition_ids": list(self.offsets),
        }


class Groups:
    def __init__(self, wait_s: float, first_backoff_s: float = 0.5, max_backoff_s: float = 60.0) -> None:
        self.wait_s = wait_s
        self._open: dict[GroupKey, Group] = {}
        #: one past the last offset added
        self._read_to: int | None = None
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._backoff_s = first_backoff_s
        #: nothing is due before this time: the last delivery failed
        self._retry_at = float("-inf")

    def __len__(self) -> int:
        return len(self._open)

    def add(self, offset: int, entry: Mapping[str, Any], now: float) -> None:
        """A transition (feed JSON with ``rule_id``, ``force_id``, ``fingerprint``)."""
        key = (entry["rule_id"], entry["force_id"])
        group = self._open.get(key)
        if group is None:
            group = self._open[key] = Group(key, offset, now)
        group.latest.pop(entry["fingerprint"], None)
        group.latest[entry["fingerprint"]] = entry
        group.offsets.append(offset)
        self.skip(offset)

    def skip(self, offset: int) -> None:
        """An offset read and not for this receiver (another force's): nothing to deliver."""
        self._read_to = max(self._read_to or 0, offset + 1)

    def due(self, now: float) -> list[Group]:
        """Groups whose wait is over, oldest first (none while a failed delivery backs off)."""
        if now < self._retry_at:
            return []
        ready = [g for g in self._open.values() if now - g.opened_at >= self.wait_s]
        return sorted(ready, key=lambda g: g.first_offset)

    def done(self, group: Group) -> None:
        """``group`` was delivered."""
        self._open.pop(group.key, None)
        self._backoff_s = self._first_backoff_s

    def failed(self, now: float) -> float:
        """The delivery of the oldest due group failed: nothing is due again for the backoff
        returned, which doubles with each failure up to the ceiling."""
        wait = self._backoff_s
        self._retry_at = now + wait
        self._backoff_s = min(self._max_backoff_s, wait * 2)
        return wait

    def commit_offset(self) -> int | None:
        """Where a consumer may commit now (None: nothing read yet)."""
        if self._open:
            return min(g.first_offset for g in self._open.values())
        return self._read_to
