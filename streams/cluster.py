"""Counts and rule totals across every worker of the group.

Each worker holds the counts of its own partitions, and the alert rules' totals over them
(``alerts.aggregates``). ``Cluster`` finds the other workers through the group's membership
(``streams.runtime.assignor``: every member's URL travels in the group's user data) and adds up
their parts; a worker that does not answer, or answers for other rules, raises ``PeerError``
rather than let a partial figure through. Crime references leave a worker only pseudonymised.

- ``rows``: counts grouped by any dimensions over a day range (``/api/counts``: O(cells));
- ``totals``: every rule's numerator and denominator per (force, category) on a day (the alert
  leader, every evaluation: independent of the days and crimes held);
- ``evidence``: pseudonyms of crimes behind given alerts (only when count or case alerts fire).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from alerts.aggregates import RuleAggregates, RuleTotals, merge
from alerts.engine import window
from alerts.rules import rules_fingerprint
from streams.codec import decode_held
from streams.core.buckets import merge_rows
from streams.core.clock import Clock
from streams.core.counting import pseudonym
from streams.core.query import Row
from streams.dashboard.scrutiny import Candidate, in_scope
from streams.peers import Params, PeerError, PeerTransport
from streams.runtime.view import WorkerState
from streams.wire import TotalsReply, decode_totals

__all__ = ["AlertKey", "Cluster"]

#: an alert: rule id, force, category
AlertKey = tuple[str, str, str]
#: evidence kept per alert
EVIDENCE = 10


class Cluster:
    def __init__(
        self,
        loop: WorkerState,
        aggregates: RuleAggregates,
        url: str,
        pseudonym_key: bytes,
        clock: Clock,
        peers: PeerTransport,
    ) -> None:
        self.loop = loop
        #: which day is today (DW_CLOCK): the one clock every page and the evaluator ask
        self.clock = clock
        self.aggregates = aggregates
        self.rules = {r.id: r for r in aggregates.rules}
        self.rules_id = rules_fingerprint(aggregates.rules)
        self.url = url.rstrip("/")
        #: how the other workers are asked (``streams.peers``: one long-lived HTTP client)
        self._peers = peers
        #: how long the last ``local_totals`` took (the evaluator reports it with its own time)
        self.local_totals_s = 0.0
        self._key = pseudonym_key

    def local_clock(self) -> dt.date | None:
        return self.loop.newest()

    async def local_rows(
        self, group_by: Sequence[str], first: dt.date | None, last: dt.date | None, force: str | None = None
    ) -> dict[Row, int]:
        """This worker's counts grouped by ``group_by`` (of one force, if given): O(cells), so
        the event loop is let go between partitions."""
        parts = []
        for p in list(self.loop.partitions.values()):
            parts.append(p.counts.rows(group_by, first, last, force))
            await asyncio.sleep(0)
        return merge_rows(parts)

    def local_totals(self, at: dt.date) -> TotalsReply:
        started = time.perf_counter()
        reply = TotalsReply(self.rules_id, self.loop.recovering, self.aggregates.totals(at))
        self.local_totals_s = time.perf_counter() - started
        return reply

    def local_evidence(self, alerts: Sequence[AlertKey], at: dt.date) -> dict[AlertKey, list[str]]:
        """Pseudonyms of up to EVIDENCE crimes behind each alert, newest first."""
        out: dict[AlertKey, list[str]] = {}
        for rule_id, force, category in alerts:
            rule = self.rules.get(rule_id)
            if rule is None:
                continue
            first, last = window(at, rule.window_days)
            keys: list[str] = []
            for part in list(self.loop.partitions.values()):
                keys += part.counts.refs_matching(
                    force, category, rule.disposals, first, last, rule.domestic_abuse
                )
            out[(rule_id, force, category)] = [pseudonym(k, self._key) for k in keys[:EVIDENCE]]
        return out

    async def local_reidentify(self, force: str, wanted: str) -> str | None:
        """The crime reference of ``force`` whose pseudonym is ``wanted``, if a partition of this
        worker holds it: its crime keys are pseudonymised one by one (no mapping is kept), with
        the event loop let go every few thousand."""
        prefix = f"{force}/".encode()
        for n, p in enumerate(sorted(self.loop.partitions)):
            for i, key in enumerate(self.loop.store.keys(p, prefix)):
                crime_key = key.decode()
                if pseudonym(crime_key, self._key) == wanted:
                    return crime_key[len(prefix) :]
                if i % 5000 == 4999:
                    await asyncio.sleep(0)
            if n:
                await asyncio.sleep(0)
        return None

    async def local_candidates(self, force: str, first: dt.date, last: dt.date) -> list[Candidate]:
        """The crimes of ``force`` on this worker's partitions whose latest outcome is an
        out-of-court disposal of a high-risk category dated ``first``..``last``: the store's,
        with the changes not yet checkpointed over them; the event loop let go every few
        thousand crimes."""
        prefix = f"{force}/".encode()
        out: list[Candidate] = []
        for p in sorted(self.loop.partitions):
            part = self.loop.partitions.get(p)
            if part is None:
                continue
            pending = {k: h for k, h in part.pending.items() if k.startswith(prefix)}
            read = self.loop.store.reader(p)
            held = []
            for i, key in enumerate(self.loop.store.keys(p, prefix)):
                if key not in pending:
                    raw = read(key)
                    if raw is not None:
                        held.append((key, decode_held(raw)[0]))
                if i % 5000 == 4999:
                    await asyncio.sleep(0)
            for key, h in [*held, *pending.items()]:
                c = h.cell
                if in_scope(c.category, c.disposal, c.day, first, last):
                    out.append(Candidate(key.decode(), c.category, c.disposal, c.day, c.domestic_abuse))
            await asyncio.sleep(0)
        return out

    async def candidates(self, force: str, first: dt.date, last: dt.date) -> tuple[list[Candidate], bool]:
        """``local_candidates`` of every worker, and whether any is still restoring."""
        params = {"force": force, "first": first.isoformat(), "last": last.isoformat()}
        answers = await self._ask_peers("/api/scrutiny/local", params)
        out = await self.local_candidates(force, first, last)
        for _, doc in answers:
            out += [
                Candidate(k, cat, d, dt.date.fromisoformat(day), bool(da))
                for k, cat, d, day, da in doc["candidates"]
            ]
        recovering = self.loop.recovering or any(a.get("recovering") for _, a in answers)
        return out, recovering

    async def reidentify(self, force: str, wanted: str) -> str | None:
        """The crime reference behind a pseudonym, from whichever worker holds the crime."""
        found = await self.local_reidentify(force, wanted)
        if found is not None:
            return found
        answers = await self._ask_peers("/api/reidentify/local", {"force": force, "pseudonym": wanted})
        refs = [a["crime_ref"] for _, a in answers if a.get("crime_ref")]
        return refs[0] if refs else None

    def peers(self) -> list[str]:
        """URLs of the other workers that own partitions."""
        return sorted(u.rstrip("/") for u in self.loop.membership.urls() if u.rstrip("/") != self.url)

    async def _ask_peers(self, path: str, params: Params) -> list[tuple[str, Any]]:
        """(peer URL, JSON answer) of every other worker, asked at once; ``PeerError`` if any
        does not answer with its figures."""
        others = self.peers()
        if not others:
            return []
        answers = await asyncio.gather(*(self._peers.get_json(f"{u}{path}", params) for u in others))
        return list(zip(others, answers, strict=True))

    async def close(self) -> None:
        """Close the connections to the other workers (the worker is stopping)."""
        await self._peers.close()

    async def today(self) -> dt.date | None:
        """Today by the clock (DW_CLOCK): the UTC date, or the newest outcome date any worker
        holds (asked of every worker only for a clock that follows the data)."""
        if not self.clock.follows_data:
            return self.clock.today(None)
        clocks = [self.local_clock()]
        answers = await self._ask_peers("/api/clock", {})
        clocks += [
            dt.date.fromisoformat(a["newest_outcome_date"]) for _, a in answers if a["newest_outcome_date"]
        ]
        known = [c for c in clocks if c is not None]
        return self.clock.today(max(known) if known else None)

    async def totals(self, at: dt.date) -> tuple[RuleTotals, bool]:
        """Every rule's totals per (force, category) for windows ending on ``at``, over every
        worker; and whether any worker is still recovering."""
        answers = await self._ask_peers("/api/aggregates/local", {"at": at.isoformat()})
        mine = self.local_totals(at)
        parts, recovering = [mine.totals], mine.recovering
        for url, doc in answers:
            try:
                reply = decode_totals(doc)
            except ValueError as exc:
                raise PeerError(f"{url} answered no totals: {exc}") from exc
            if reply.rules != self.rules_id:
                raise PeerError(
                    f"{url} evaluates other rules (fingerprint {reply.rules}, here {self.rules_id}): "
                    "every worker needs the same DW_RULES"
                )
            parts.append(reply.totals)
            recovering = recovering or reply.recovering
        return merge(parts), recovering

    async def evidence(self, alerts: Sequence[AlertKey], at: dt.date) -> dict[AlertKey, list[str]]:
        """Pseudonyms of up to EVIDENCE crimes behind each alert, from every worker."""
        params = [("at", at.isoformat())] + [("alert", "|".join(a)) for a in alerts]
        answers = await self._ask_peers("/api/refs/local", params)
        out = self.local_evidence(alerts, at)
        for _, doc in answers:
            for rule_id, force, category, pseudonyms in doc["evidence"]:
                kept = out.setdefault((rule_id, force, category), [])
                kept.extend(p for p in pseudonyms if p not in kept)
        return {key: refs[:EVIDENCE] for key, refs in out.items()}

    async def rows(
        self, group_by: Sequence[str], first: dt.date, last: dt.date, force: str | None = None
    ) -> tuple[dict[Row, int], bool, int]:
        """Counts of every worker grouped by ``group_by`` over ``first``..``last`` (of one force,
        if given); also whether any worker is still recovering, and how many workers answered."""
        params = {"group_by": ",".join(group_by), "first": first.isoformat(), "last": last.isoformat()}
        if force is not None:
            params["force"] = force
        answers = await self._ask_peers("/api/counts/local", params)
        parts = [await self.local_rows(group_by, first, last, force)]
        parts += [{tuple(r[:-1]): int(r[-1]) for r in a["rows"]} for _, a in answers]
        recovering = self.loop.recovering or any(a.get("recovering") for _, a in answers)
        return merge_rows(parts), recovering, 1 + len(answers)
