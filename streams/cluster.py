"""Counts across every worker of the group.

Each worker holds the counts of its own partitions. ``Cluster`` finds the other workers through
the group's membership (``streams.runtime.assignor``: every member's URL travels in the group's
user data) and adds up their partial counts; a worker that does not answer raises ``PeerError``
rather than let a partial figure through. Crime references leave a worker only pseudonymised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import aiohttp

from streams.access import PEER_HEADER
from streams.core.buckets import merge_refs, merge_rows
from streams.core.counting import pseudonym
from streams.core.query import Row
from streams.runtime.loop import CountingLoop

PEER_TIMEOUT_S = 10.0


class PeerError(Exception):
    """Another worker did not answer."""


class Cluster:
    def __init__(self, loop: CountingLoop, url: str, credential: str, pseudonym_key: bytes) -> None:
        self.loop = loop
        self.url = url.rstrip("/")
        self.credential = credential
        self._key = pseudonym_key

    def local_clock(self) -> dt.date | None:
        return self.loop.newest()

    def local_rows(
        self, group_by: Sequence[str], first: dt.date | None, last: dt.date | None
    ) -> dict[Row, int]:
        return merge_rows(p.counts.rows(group_by, first, last) for p in list(self.loop.partitions.values()))

    def local_refs(self, first: dt.date, last: dt.date) -> dict[Row, list[str]]:
        """Pseudonyms of the crimes kept as evidence per cell (all dimensions)."""
        rows = merge_refs(p.counts.refs_by_row(first, last) for p in list(self.loop.partitions.values()))
        return {row: [pseudonym(k, self._key) for k in keys] for row, keys in rows.items()}

    def peers(self) -> list[str]:
        """URLs of the other workers that own partitions."""
        return sorted(u.rstrip("/") for u in self.loop.membership.urls() if u.rstrip("/") != self.url)

    async def _fetch(self, session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> Any:
        try:
            async with session.get(url, params=params) as resp:
                if resp.status != 200:
                    raise PeerError(f"{url} answered {resp.status}")
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PeerError(f"{url} did not answer: {type(exc).__name__} {exc}") from exc

    async def _ask_peers(self, path: str, params: dict[str, str]) -> list[Any]:
        others = self.peers()
        if not others:
            return []
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S), headers={PEER_HEADER: self.credential}
        ) as session:
            return list(await asyncio.gather(*(self._fetch(session, f"{u}{path}", params) for u in others)))

    async def today(self, clock_kind: str) -> dt.date | None:
        """Today by DW_CLOCK: the UTC date, or the newest outcome date any worker holds."""
        if clock_kind == "wall":
            return dt.datetime.now(dt.UTC).date()
        clocks = [self.local_clock()]
        answers = await self._ask_peers("/api/clock", {})
        clocks += [
            dt.date.fromisoformat(a["newest_outcome_date"]) for a in answers if a["newest_outcome_date"]
        ]
        known = [c for c in clocks if c is not None]
        return max(known) if known else None

    async def refs(self, first: dt.date, last: dt.date) -> dict[Row, list[str]]:
        """Crime pseudonyms per cell (all dimensions) from every worker."""
        params = {"first": first.isoformat(), "last": last.isoformat()}
        answers = await self._ask_peers("/api/refs/local", params)
        parts = [self.local_refs(first, last)]
        parts += [{tuple(r[:-1]): r[-1] for r in a["rows"]} for a in answers]
        return merge_refs(parts)

    async def rows(
        self, group_by: Sequence[str], first: dt.date, last: dt.date
    ) -> tuple[dict[Row, int], bool, int]:
        """Counts of every worker grouped by ``group_by`` over ``first``..``last``; also whether
        any worker is still recovering, and how many workers answered."""
        params = {"group_by": ",".join(group_by), "first": first.isoformat(), "last": last.isoformat()}
        answers = await self._ask_peers("/api/counts/local", params)
        parts = [self.local_rows(group_by, first, last)]
        parts += [{tuple(r[:-1]): int(r[-1]) for r in a["rows"]} for a in answers]
        recovering = self.loop.recovering or any(a.get("recovering") for a in answers)
        return merge_rows(parts), recovering, 1 + len(answers)
