"""The alert leader's evaluation: rules over every worker's counts, transitions written once.

Only the worker that owns partition 0 of ``disposals`` evaluates (``CountingLoop.is_leader``):
every ``DW_ALERT_INTERVAL_S``, and at once when the loop counted a case-rule breach (``wake``).
One evaluation (``Evaluator.evaluate_once``):

1. claim the alerts topic (``AlertWriter.claim``): from here no earlier leader can write;
2. wait until the alert log has read every committed transition, so that a transition that
   reached the topic before a crash or a move of leadership is known and never emitted again;
3. gather every worker's rule totals for windows ending on the evaluation day (``Cluster.totals``:
   the aggregates each worker keeps as counts move, so the cost does not grow with the crimes
   held; skipped while any worker is recovering), evaluate the rules, gather evidence for the
   count and case alerts that fire, and write the transitions in one transaction.

Because the timer re-evaluates, alerts resolve when the window moves on with no new event (under
``DW_CLOCK=stream`` the newest outcome date held drives the windows). Alerts of rules removed
from the rules file resolve.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError

from alerts.engine import Evaluation, evaluate_totals
from alerts.evidence import summary
from alerts.lifecycle import Holds, Transition, transitions
from alerts.rules import Rule
from streams import metrics
from streams.alerting.log import AlertLog
from streams.alerting.writer import AlertWriter, Fenced
from streams.cluster import AlertKey, Cluster, PeerError
from streams.codec import encode_alert
from streams.reference import FORCE_NAMES
from streams.runtime.loop import CountingLoop
from streams.wire import alert_json

log = logging.getLogger(__name__)


def retired(entry: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The resolved record of a firing alert whose rule was removed from the rules file."""
    record = {k: v for k, v in entry.items() if k not in ("id", "fired_at")}
    record.update(
        state="resolved",
        transition_at=now,
        description=f"rule removed: {entry['description']}",
        summary=f"Resolved: the rule {entry['rule_id']} was removed from the rules file.",
    )
    for k in ("window_start", "window_end"):
        record[k] = dt.date.fromisoformat(entry[k])
    return record


def key(t: Transition) -> AlertKey:
    return (t.rule.id, t.evaluation.force, t.evaluation.category)


class Evaluator:
    def __init__(
        self,
        rules: Sequence[Rule],
        loop: CountingLoop,
        cluster: Cluster,
        alert_log: AlertLog,
        writer: AlertWriter,
        *,
        clock_kind: str,
        interval_s: float,
    ) -> None:
        self.rules = list(rules)
        self._by_id = {r.id: r for r in rules}
        self._loop = loop
        self._cluster = cluster
        self._log = alert_log
        self._writer = writer
        self._clock_kind = clock_kind
        self._interval_s = interval_s
        self._soon = asyncio.Event()
        #: since when each alert's condition has held (the lifecycle's hold times)
        self._holds = Holds()
        self._firing_labels: dict[str, tuple[str, str, str, str]] = {}
        self._exporting = False

    def wake(self) -> None:
        """Evaluate now rather than at the next tick (a case breach was counted)."""
        self._soon.set()

    async def run(self) -> None:
        """Every DW_ALERT_INTERVAL_S, or at once when woken."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), self._interval_s)
            self._soon.clear()
            try:
                n = await self.evaluate_once()
            except PeerError as exc:
                log.warning("alerts not evaluated: %s", exc)
                continue
            except Fenced as exc:
                log.info("alerts not written: %s", exc)
                continue
            except KafkaError as exc:
                log.warning("alerts not written (the transaction was aborted; retried): %r", exc)
                continue
            if n:
                log.info("%d alert transitions emitted", n)

    async def close(self) -> None:
        await self._writer.release()

    def _export_totals(self, evals: Sequence[Evaluation]) -> None:
        """The leader's numerators and denominators of rate, spike and peer rules, as gauges."""
        for e in evals:
            if self._by_id[e.rule_id].measure in ("rate", "spike", "peer") and e.denominator is not None:
                metrics.RULE_NUMERATOR.labels(e.rule_id, e.force, e.category).set(e.numerator)
                metrics.RULE_DENOMINATOR.labels(e.rule_id, e.force, e.category).set(e.denominator)
        self._exporting = True

    def _stop_exporting(self) -> None:
        """A worker that no longer leads exports no alert gauges: the new leader does."""
        if self._exporting or self._firing_labels:
            metrics.RULE_NUMERATOR.clear()
            metrics.RULE_DENOMINATOR.clear()
            metrics.ALERTS_FIRING.clear()
            self._firing_labels.clear()
            self._exporting = False

    async def evaluate_once(self) -> int:
        """One evaluation on the leader; returns the number of transitions emitted."""
        if not self._loop.is_leader():
            await self._writer.release()
            self._stop_exporting()
            return 0
        if self._loop.recovering:
            return 0
        await self._writer.claim()  # first: from here no earlier leader can write
        if not await self._log.caught_up():
            return 0
        at = await self._cluster.today(self._clock_kind)
        if at is None:
            return 0
        totals, recovering = await self._cluster.totals(at)
        if recovering:
            return 0
        started = time.perf_counter()
        evals = evaluate_totals(self.rules, totals, at=at, forces=FORCE_NAMES)
        self._export_totals(evals)
        now = dt.datetime.now(dt.UTC)
        found = transitions(evals, self._log.state_of(), self._by_id, day=at, at=now, holds=self._holds)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started + self._cluster.local_totals_s)
        cited = [key(t) for t in found if t.state == "firing" and t.rule.measure in ("count", "case")]
        evidence = await self._cluster.evidence(cited, at) if cited else {}
        found = [
            dataclasses.replace(
                t,
                crime_refs=tuple(evidence.get(key(t), ())),  # pseudonyms of crimes the rule counted
                summary=summary(
                    t.rule, t.evaluation, t.state, FORCE_NAMES.get(t.evaluation.force, t.evaluation.force)
                ),
            )
            for t in found
        ]
        # alerts of rules no longer in the file resolve (a rules change takes effect on restart)
        out: list[tuple[str, str, str, dict[str, Any]]] = [
            (fp, entry["rule_id"], "resolved", retired(entry, now))
            for fp, entry in self._log.current.items()
            if entry["state"] == "firing" and entry["rule_id"] not in self._by_id
        ]
        out += [(t.fingerprint, t.rule.id, t.state, t.record()) for t in found]
        if not out:
            return 0
        offsets = await self._writer.write([(fp.encode(), encode_alert(record)) for fp, _, _, record in out])
        # committed: from here the transitions are on the topic (the follower will read the same)
        for (_, rule_id, state, record), offset in zip(out, offsets, strict=True):
            self._log.remember(alert_json(record, offset))
            metrics.ALERT_TRANSITIONS.labels(rule_id, state).inc()
        for t in found:
            labels = (t.rule.id, t.evaluation.force, t.evaluation.category, t.rule.severity)
            if t.state == "firing":
                metrics.ALERTS_FIRING.labels(*labels).set(1)
                self._firing_labels[t.fingerprint] = labels
            elif t.fingerprint in self._firing_labels:
                metrics.ALERTS_FIRING.remove(*self._firing_labels.pop(t.fingerprint))
        return len(out)
