"""What workers send each other and the feed: encoders and decoders in pairs.

- ``MemberInfo``: each member's subscription user data. Its URL, so that the others can ask it
  for its partial counts, as Kafka Streams' ``application.server``; and the partitions it owned
  in the last generation and holds in its local store, so that the assignor can leave them
  where their state already is.
- ``Membership``: the group leader's assignment user data, the same for every member: which
  member URL owns which partition, for ``/api/counts`` fan-out and alert leadership.

JSON, versioned by a ``v`` field: small, read once per rebalance, and readable in a debugger.

- ``alert_json``: an alerts-topic record as the feed (HTTP, SSE, webhooks) shows it: dates as ISO
  strings, and its feed id (its offset on the alerts topic).
- ``TotalsReply``: a worker's rule totals for the alert leader (``/api/aggregates/local``): per
  rule, per (force, category), numerator and denominator over the window and the one before.
  Its size depends on rules, forces and categories, never on days or crimes held. It carries
  the fingerprint of the worker's rules, so workers with different rule files are not added up.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts.aggregates import RuleTotals, Totals

WIRE_VERSION = 1


@dataclass(frozen=True, slots=True)
class MemberInfo:
    url: str
    owned: tuple[int, ...] = ()
    held: tuple[int, ...] = ()


def encode_member(info: MemberInfo) -> bytes:
    return json.dumps(
        {"v": WIRE_VERSION, "url": info.url, "owned": list(info.owned), "held": list(info.held)}
    ).encode()


def decode_member(data: bytes | None) -> MemberInfo:
    """A member's user data; a member whose data is unreadable gets no preferences and no URL."""
    try:
        doc = json.loads(data or b"{}")
        return MemberInfo(
            str(doc.get("url", "")),
            tuple(int(p) for p in doc.get("owned", ())),
            tuple(int(p) for p in doc.get("held", ())),
        )
    except (ValueError, TypeError, AttributeError):
        return MemberInfo("")


@dataclass(frozen=True, slots=True)
class Membership:
    """Which member URL owns which partition, as the group leader assigned them."""

    owners: dict[int, str] = field(default_factory=dict)

    def urls(self) -> set[str]:
        return set(self.owners.values())

    def owner_of(self, partition: int) -> str | None:
        return self.owners.get(partition)


def encode_membership(membership: Membership) -> bytes:
    return json.dumps(
        {"v": WIRE_VERSION, "owners": {str(p): u for p, u in membership.owners.items()}}
    ).encode()


def decode_membership(data: bytes | None) -> Membership:
    try:
        doc = json.loads(data or b"{}")
        return Membership({int(p): str(u) for p, u in doc.get("owners", {}).items()})
    except (ValueError, TypeError, AttributeError):
        return Membership()


def alert_json(record: Mapping[str, Any], offset: int) -> dict[str, Any]:
    """An alerts-topic record as the feed shows it (dates as ISO strings, with its feed id)."""
    out: dict[str, Any] = {"id": offset}
    for k, v in record.items():
        out[k] = v.isoformat() if isinstance(v, dt.date | dt.datetime) else v
    return out


@dataclass(frozen=True, slots=True)
class TotalsReply:
    rules: str
    recovering: bool
    totals: RuleTotals


def encode_totals(reply: TotalsReply) -> dict[str, Any]:
    return {
        "v": WIRE_VERSION,
        "rules": reply.rules,
        "recovering": reply.recovering,
        "totals": {
            rule_id: [[force, category, *t] for (force, category), t in rows.items() if any(t)]
            for rule_id, rows in reply.totals.items()
        },
    }


def decode_totals(doc: Mapping[str, Any]) -> TotalsReply:
    """Raises ``ValueError`` on a reply that is not one."""
    try:
        totals: RuleTotals = {
            str(rule_id): {(str(r[0]), str(r[1])): Totals(*(int(x) for x in r[2:6])) for r in rows}
            for rule_id, rows in doc["totals"].items()
        }
        return TotalsReply(str(doc["rules"]), bool(doc["recovering"]), totals)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"not a totals reply: {exc!r}") from exc
