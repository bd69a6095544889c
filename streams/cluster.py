"""Counts across every worker of the group.

Each worker holds the counts of its own partitions. ``Cluster`` finds the other workers through
Faust's partition assignor (the URLs they advertise) and adds up their partial counts; a worker
that does not answer raises ``PeerError`` rather than letting a partial figure through.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import aiohttp

from streams.access import PEER_HEADER, peer_credential
from streams.app import CRIMES_TABLE, DisposalApp
from streams.buckets import Row, merge_refs, merge_rows

PEER_TIMEOUT_S = 10.0


class PeerError(Exception):
    """Another worker did not answer."""


class Cluster:
    def __init__(self, dw: DisposalApp) -> None:
        self.dw = dw
        self.credential = peer_credential(dw.settings.pseudonym_key.encode())

    def local_clock(self) -> dt.date | None:
        days = [c.newest for c in self.dw.counts.values() if c.newest is not None]
        return max(days) if days else None

    def local_rows(
        self, group_by: Sequence[str], first: dt.date | None, last: dt.date | None
    ) -> dict[Row, int]:
        return merge_rows(c.rows(group_by, first, last) for c in list(self.dw.counts.values()))

    def peers(self) -> list[str]:
        """URLs of the other workers that own partitions of the crimes table."""
        app = self.dw.app
        me = str(app.conf.canonical_url).rstrip("/")
        try:
            meta = app.router.table_metadata(CRIMES_TABLE)
        except Exception:  # no assignment yet
            return []
        return sorted({str(url).rstrip("/") for url in meta} - {me})

    async def _fetch(self, session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> Any:
        try:
            async with session.get(url, params=params) as resp:
                if resp.status != 200:
                    raise PeerError(f"{url} answered {resp.status}")
                return await resp.json()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PeerError(f"{url} did not answer: {type(exc).__name__} {exc}") from exc

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S), headers={PEER_HEADER: self.credential}
        )

    async def today(self) -> dt.date | None:
        """Today by DW_CLOCK: the UTC date, or the newest outcome date any worker holds."""
        if self.dw.settings.clock == "wall":
            return dt.datetime.now(dt.UTC).date()
        clocks = [self.local_clock()]
        others = self.peers()
        if others:
            async with self._session() as session:
                answers = await asyncio.gather(*(self._fetch(session, f"{u}/api/clock", {}) for u in others))
            clocks += [
                dt.date.fromisoformat(a["newest_outcome_date"]) for a in answers if a["newest_outcome_date"]
            ]
        known = [c for c in clocks if c is not None]
        return max(known) if known else None

    async def refs(self, first: dt.date, last: dt.date) -> dict[Row, list[str]]:
        """Crime pseudonyms per cell (all dimensions) from every worker."""
        parts = [c.refs_by_row(first, last) for c in list(self.dw.counts.values())]
        others = self.peers()
        if others:
            params = {"first": first.isoformat(), "last": last.isoformat()}
            async with self._session() as session:
                answers = await asyncio.gather(
                    *(self._fetch(session, f"{u}/api/refs/local", params) for u in others)
                )
            parts += [{tuple(r[:-1]): r[-1] for r in a["rows"]} for a in answers]
        return merge_refs(parts)

    async def rows(
        self, group_by: Sequence[str], first: dt.date, last: dt.date
    ) -> tuple[dict[Row, int], bool, int]:
        """Counts of every worker grouped by ``group_by`` over ``first``..``last``; also whether
        any worker is still recovering, and how many workers answered."""
        others = self.peers()
        answers: list[Any] = []
        if others:
            params = {"group_by": ",".join(group_by), "first": first.isoformat(), "last": last.isoformat()}
            async with self._session() as session:
                answers = await asyncio.gather(
                    *(self._fetch(session, f"{u}/api/counts/local", params) for u in others)
                )
        parts = [self.local_rows(group_by, first, last)]
        parts += [{tuple(r[:-1]): int(r[-1]) for r in a["rows"]} for a in answers]
        recovering = self.dw.recovering or any(a.get("recovering") for a in answers)
        return merge_rows(parts), recovering, 1 + len(others)
