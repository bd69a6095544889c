"""The alert leader's evaluation: rules over every worker's counts, transitions written once.

Only the worker that owns partition 0 of ``disposals`` evaluates (``WorkerState.is_leader``):
every ``DW_ALERT_INTERVAL_S``, and soon when the loop counted a case-rule breach (``wake``):
at once, or at least ``MIN_GAP_S`` after the previous evaluation and so that evaluations take at
most ``BUSY_SHARE`` of the time (``gap``), however many breaches arrive meanwhile; while the loop
is catching up on a backlog, at most once a second and ``CATCH_UP_SHARE`` of the time.
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
from collections.abc import Iterable, Sequence
from typing import Any

from alerts import stats
from alerts.aggregates import RuleTotals
from alerts.engine import Evaluation, Memo, evaluate_totals
from alerts.evidence import summary
from alerts.lifecycle import Holds, Transition, transitions
from alerts.rules import Rule
from streams import metrics
from streams.alerting.log import AlertLog, LogUnavailable
from streams.alerting.writer import AlertWriter, Fenced, WriteAborted
from streams.cluster import AlertKey, Cluster
from streams.codec import encode_alert
from streams.framing import SINGLE_OBJECT, Framing
from streams.peers import PeerError
from streams.reference import FORCE_NAMES
from streams.runtime.view import WorkerState
from streams.wire import alert_json

log = logging.getLogger(__name__)


def to_millis(at: dt.datetime) -> dt.datetime:
    """``at`` to the millisecond, the precision the alerts topic keeps (``timestamp-millis``): the
    leader remembers what it wrote before its follower reads it back, and every worker must then
    serve the same feed."""
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


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


#: the least time between two evaluations, and the most of the thread's time their computing may
#: take when woken back to back: the counting loop keeps the rest
MIN_GAP_S = 0.05
BUSY_SHARE = 0.2
#: while the counting loop has at least CATCHING_UP records to process (a replay, a backlog after
#: a restart), an alert cannot be more timely than the backlog lets it be: evaluations are then at
#: least CATCH_UP_GAP_S apart and compute for at most CATCH_UP_SHARE of the time, and the loop
#: gets the rest to catch up. Safe: an evaluation is a function of the totals on its evaluation
#: day, so one a second sees every condition that holds for a day or more of the data's time
#: unless the loop counts more than a day of data a second, and then a condition that held for
#: less than a second of counting is one that a later evaluation of the same day can undo.
CATCHING_UP = 5_000
CATCH_UP_GAP_S = 1.0
CATCH_UP_SHARE = 0.05
#: the longest wait, whatever one evaluation took (a pause of the process, a first call)
MAX_GAP_S = 2.0


def gap(spent_s: float, backlog: int = 0) -> float:
    """Seconds to wait after an evaluation that computed for ``spent_s`` before the next one,
    with ``backlog`` records left for the counting loop to process."""
    if backlog >= CATCHING_UP:
        least, share = CATCH_UP_GAP_S, CATCH_UP_SHARE
    else:
        least, share = MIN_GAP_S, BUSY_SHARE
    return max(least, min(MAX_GAP_S, spent_s * (1 - share) / share))


#: the longest the evaluator waits for the loop to catch up before it imports scipy anyway
STATISTICS_WAIT_S = 3.0


async def load_statistics(rules: Iterable[Rule]) -> None:
    """Import scipy, if a rule needs it, in a thread.

    The import takes most of a second (0.6-1.6 s on these machines), most of it holding the
    interpreter. Imported before the worker joined its group, it was a third to a half of a
    restart's time to its first new event counted (``bench/restart.py``); imported in a thread
    at once, it slowed the loop as much while the loop caught up after the restart. So the
    evaluator imports it once the loop has caught up, or after ``STATISTICS_WAIT_S`` if it has
    not (a replay: its first seconds count slower instead). Nothing waits for it but the
    evaluator, and no evaluation starts before it is done, so none holds the loop while the
    import holds the interpreter's import lock. The first evaluation after a start comes at
    most that wait and the import later."""
    started = time.monotonic()
    if await asyncio.to_thread(stats.preload, {r.measure for r in rules}):
        log.info("scipy imported for the alert statistics in %.2f s", time.monotonic() - started)


def key(t: Transition) -> AlertKey:
    return (t.rule.id, t.evaluation.force, t.evaluation.category)


class Evaluator:
    def __init__(
        self,
        rules: Sequence[Rule],
        loop: WorkerState,
        cluster: Cluster,
        alert_log: AlertLog,
        writer: AlertWriter,
        *,
        interval_s: float,
        framing: Framing = SINGLE_OBJECT,
    ) -> None:
        self.rules = list(rules)
        #: how transitions are framed on the alerts topic (a registry id, or single-object)
        self._framing = framing
        self._by_id = {r.id: r for r in rules}
        self._loop = loop
        self._cluster = cluster
        self._log = alert_log
        self._writer = writer
        self._interval_s = interval_s
        self._soon = asyncio.Event()
        #: since when each alert's condition has held (the lifecycle's hold times)
        self._holds = Holds()
        self._firing_labels: dict[str, tuple[str, str, str, str]] = {}
        #: the last evaluation of each alert, reused while its inputs stay the same
        self._memo: Memo = {}
        #: the evaluation each alert's gauges were last set from (only changes are exported)
        self._exported: dict[tuple[str, str, str], Evaluation] = {}
        #: seconds the last evaluation computed (on this process's one thread; waiting on the
        #: other workers or the broker takes nothing from the counting loop)
        self.computed_s = 0.0

    def wake(self) -> None:
        """Evaluate now rather than at the next tick (a case breach was counted)."""
        self._soon.set()

    async def run(self) -> None:
        """Every DW_ALERT_INTERVAL_S, or when woken: at once, or, if an evaluation ended less
        than a gap ago, once the gap has passed (``gap``). Wake-ups in between are one. First,
        the statistics' library is imported (``load_statistics``), once the loop has caught up
        or STATISTICS_WAIT_S has passed."""
        started = time.monotonic()
        while not self._loop.caught_up() and time.monotonic() - started < STATISTICS_WAIT_S:
            await asyncio.sleep(0.05)
        log.debug(
            "statistics loaded after %.2f s (the loop caught up: %s)",
            time.monotonic() - started,
            self._loop.caught_up(),
        )
        await load_statistics(self._by_id.values())
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._soon.wait(), self._interval_s)
            self._soon.clear()
            self.computed_s = 0.0
            await self._evaluate_logged()
            backlog = self._loop.backlog()
            wait = gap(self.computed_s, backlog)
            log.debug(
                "evaluation computed %.4f s; backlog %d records; next in %.2f s",
                self.computed_s,
                backlog,
                wait,
            )
            await asyncio.sleep(wait)

    async def _evaluate_logged(self) -> None:
        try:
            n = await self.evaluate_once()
        except PeerError as exc:
            log.warning("alerts not evaluated: %s", exc)
        except Fenced as exc:
            log.info("alerts not written: %s", exc)
        except WriteAborted as exc:  # the brokers away, or a transaction failed
            log.warning("alerts not written (retried): %s", exc)
        except LogUnavailable as exc:  # the brokers away
            log.warning("alerts not evaluated (retried): %s", exc)
        else:
            if n:
                log.info("%d alert transitions emitted", n)

    async def close(self) -> None:
        await self._writer.release()

    def _export_totals(self, evals: Sequence[Evaluation]) -> None:
        """The leader's numerators and denominators of rate, spike and peer rules, as gauges."""
        exported = self._exported
        for e in evals:
            k = (e.rule_id, e.force, e.category)
            if exported.get(k) is e:
                continue
            exported[k] = e
            if self._by_id[e.rule_id].measure in ("rate", "spike", "peer") and e.denominator is not None:
                metrics.RULE_NUMERATOR.labels(*k).set(e.numerator)
                metrics.RULE_DENOMINATOR.labels(*k).set(e.denominator)

    def _stop_exporting(self) -> None:
        """A worker that no longer leads exports no alert gauges: the new leader does."""
        if self._exported or self._firing_labels:
            metrics.RULE_NUMERATOR.clear()
            metrics.RULE_DENOMINATOR.clear()
            metrics.ALERTS_FIRING.clear()
            self._firing_labels.clear()
            self._exported.clear()

    async def evaluate_once(self) -> int:
        """One evaluation on the leader; returns the number of transitions emitted. Four steps:
        gate (lead, claim the writer, wait for restores and the alert log), gather (every
        worker's rule totals), decide (statistics and transitions, with evidence), write (one
        transaction, then the log and gauges)."""
        at = await self._gate()
        if at is None:
            return 0
        totals, recovering = await self._cluster.totals(at)
        if recovering:
            return 0
        now = to_millis(dt.datetime.now(dt.UTC))
        found = await self._decide(totals, at, now)
        out = self._retired(now) + [(t.fingerprint, t.rule.id, t.state, t.record()) for t in found]
        if not out:
            return 0
        await self._write(out, found)
        return len(out)

    async def _gate(self) -> dt.date | None:
        """The day to evaluate for, or None when this worker is not to evaluate now: not the
        leader (it lets the writer go and stops exporting), restoring, the alert log not caught
        up, or nothing counted yet (stream clock). The writer is claimed first: from then no
        earlier leader can write."""
        if not self._loop.is_leader():
            await self._writer.release()
            self._stop_exporting()
            return None
        if self._loop.recovering:
            return None
        await self._writer.claim()
        if not await self._log.caught_up():
            return None
        return await self._cluster.today()

    async def _decide(self, totals: RuleTotals, at: dt.date, now: dt.datetime) -> list[Transition]:
        """Every alert's statistics from ``totals``, the transitions they make against the
        alert log, and for firing count and case alerts the crimes they counted (pseudonyms),
        with each transition's summary."""
        started = time.perf_counter()
        evals = evaluate_totals(self.rules, totals, at=at, forces=FORCE_NAMES, memo=self._memo)
        self._export_totals(evals)
        found = transitions(evals, self._log.state_of(), self._by_id, day=at, at=now, holds=self._holds)
        self.computed_s = time.perf_counter() - started + self._cluster.local_totals_s
        metrics.EVALUATION_SECONDS.observe(self.computed_s)
        cited = [key(t) for t in found if t.state == "firing" and t.rule.measure in ("count", "case")]
        evidence = await self._cluster.evidence(cited, at) if cited else {}
        return [
            dataclasses.replace(
                t,
                crime_refs=tuple(evidence.get(key(t), ())),  # pseudonyms of crimes the rule counted
                summary=summary(
                    t.rule, t.evaluation, t.state, FORCE_NAMES.get(t.evaluation.force, t.evaluation.force)
                ),
            )
            for t in found
        ]

    def _retired(self, now: dt.datetime) -> list[tuple[str, str, str, dict[str, Any]]]:
        """Alerts of rules no longer in the file resolve (a rules change takes effect on restart)."""
        return [
            (fp, entry["rule_id"], "resolved", retired(entry, now))
            for fp, entry in self._log.current.items()
            if entry["state"] == "firing" and entry["rule_id"] not in self._by_id
        ]

    async def _write(self, out: list[tuple[str, str, str, dict[str, Any]]], found: list[Transition]) -> None:
        """``out`` (fingerprint, rule, state, record) in one transaction; once committed, into
        the alert log (the follower will read the same) and the firing gauges."""
        frame = self._framing.frame
        offsets = await self._writer.write(
            [(fp.encode(), frame(encode_alert(record))) for fp, _, _, record in out]
        )
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
