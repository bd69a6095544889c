"""The Alertmanager push: oversight bodies route alerts through Alertmanager's receivers (email,
chat, paging) with no code of ours.

With ``DW_ALERTMANAGER_URL`` set, the alert leader posts to Alertmanager's ``/api/v2/alerts``, as
Prometheus does:
- every firing alert, with labels ``alertname`` (the rule id), ``force``, ``category`` and
  ``severity``, annotations with the summary and the evidence, ``startsAt`` when it fired and
  ``endsAt`` four resend intervals ahead;
- every alert resolved within the last four resend intervals, with ``endsAt`` when it resolved.
It posts them all again every ``DW_ALERTMANAGER_RESEND_S`` (60 s), and at once after a
transition. So an Alertmanager that was down, or restarted without its state, has every firing
alert again within one interval of coming back; a failed post is retried with backoff; and an
alert that nobody refreshes (the leader died) ends by itself at ``endsAt``, as Prometheus' do.
Alertmanager groups the alerts itself (its ``group_by``, ``group_wait``, ``group_interval``).

``payload`` is pure; ``AlertmanagerPush`` is the task around it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp

from streams import metrics
from streams.alerting.log import AlertLog
from streams.alerting.posting import post_json

log = logging.getLogger(__name__)

#: evidence fields sent as annotations, when the alert has them
EVIDENCE = (
    "measure",
    "value",
    "threshold",
    "numerator",
    "denominator",
    "window_start",
    "window_end",
    "p0",
    "limit",
    "interval_low",
    "interval_high",
    "baseline_numerator",
    "baseline_denominator",
    "p_value",
)


def _instant(text: str) -> str:
    """An ISO instant as Alertmanager wants it (RFC 3339, UTC)."""
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def payload(
    alerts: Iterable[Mapping[str, Any]], now: dt.datetime, resend_s: float, feed_url: str
) -> list[dict[str, Any]]:
    """What to post to /api/v2/alerts now, from the alerts' latest transitions (feed JSON)."""
    lifetime = dt.timedelta(seconds=4 * resend_s)
    out = []
    for a in alerts:
        ended = a["state"] == "resolved"
        at = dt.datetime.fromisoformat(a["transition_at"]).astimezone(dt.UTC)
        if ended and now - at > lifetime:
            continue  # resolved long ago: Alertmanager has it, or never had it firing
        annotations = {"summary": a.get("summary") or "", "description": a.get("description") or ""}
        for field in EVIDENCE:
            if a.get(field) is not None:
                annotations[field] = str(a[field])
        if a.get("crime_refs"):
            annotations["crime_refs"] = " ".join(a["crime_refs"])
        started = a.get("fired_at") or a["transition_at"]
        where = f"{feed_url}/api/alerts?state=all&force={a['force_id']}&category={a['category']}"
        out.append(
            {
                "labels": {
                    "alertname": a["rule_id"],
                    "force": a["force_id"],
                    "category": a["category"],
                    "severity": a["severity"],
                },
                "annotations": annotations,
                "startsAt": _instant(started),
                "endsAt": _instant(a["transition_at"])
                if ended
                else (now + lifetime).isoformat().replace("+00:00", "Z"),
                "generatorURL": where,
            }
        )
    return out


class AlertmanagerPush:
    def __init__(
        self,
        url: str,
        alert_log: AlertLog,
        is_leader: Callable[[], bool],
        *,
        resend_s: float,
        feed_url: str,
    ) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self._log = alert_log
        self._is_leader = is_leader
        self.resend_s = resend_s
        self._feed_url = feed_url

    async def run(self) -> None:
        """Every ``resend_s``, or at once after a transition, while this worker leads."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            seen = -1  # the newest transition pushed (or, while not leading, passed over)
            while True:
                newest = self._log.entries[-1]["id"] if self._log.entries else -1
                if not self._is_leader() or await self.push(session):
                    seen = newest
                await self._log.wait_after(seen, self.resend_s)

    async def push(self, session: aiohttp.ClientSession) -> bool:
        """Post the alerts once, retrying with backoff up to the resend interval; success?"""
        body = payload(self._log.current.values(), dt.datetime.now(dt.UTC), self.resend_s, self._feed_url)
        if not body:
            return True
        backoff = 0.5
        deadline = asyncio.get_running_loop().time() + self.resend_s
        data = json.dumps(body).encode()
        while True:
            failure = await post_json(session, self.url, data)
            metrics.ALERTMANAGER_PUSHES.labels("failed" if failure else "delivered").inc()
            if failure is None:
                return True
            if asyncio.get_running_loop().time() + backoff > deadline:
                log.warning(
                    "Alertmanager at %s: %s; the alerts are posted again next interval", self.url, failure
                )
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.resend_s)
