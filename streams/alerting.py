"""Alerts in the worker: follow the alerts topic, evaluate rules on the leader, serve the feed.

Exactly-once transitions:
- the ``alerts`` topic (one partition, keyed by fingerprint) is the source of truth for each
  alert's state; every worker follows it from the beginning (``AlertLog``, read-committed) and
  serves the feed from what it has read;
- only the worker that owns partition 0 of ``disposals`` evaluates (the leader), on a timer
  (``DW_ALERT_INTERVAL_S``) or at once when it counted a case-rule breach;
- the leader writes through ``AlertWriter``: a Kafka transactional producer under one
  transactional id for the whole deployment. Starting it fences every earlier holder and
  aborts its open transaction, so a worker that lost leadership but does not know it yet (a
  rebalance in flight, a long pause) cannot write a transition any more;
- only after that, and once its ``AlertLog`` has read to the end of the topic and no worker is
  recovering, does the leader evaluate: a transition that reached the topic before a crash or a
  move of leadership is known, so it is never emitted again, and one that did not is emitted once;
- evaluation uses every worker's counts (``Cluster``), so alerts are correct with any number of
  workers; because the timer re-evaluates, alerts resolve when the window moves on with no new
  event (under ``DW_CLOCK=stream`` the newest outcome date held drives the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from typing import Any

import aiohttp.web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from alerts.engine import evaluate
from alerts.lifecycle import Transition, transitions
from alerts.rules import Rule
from streams import metrics
from streams.access import Scope
from streams.app import DisposalApp
from streams.buckets import DIMENSIONS
from streams.cluster import Cluster, PeerError
from streams.codec import AvroCodec
from streams.reference import FORCE_NAMES

log = logging.getLogger(__name__)
ALERTS = AvroCodec("disposalwatch.Alert")
KEEPALIVE_S = 15.0


def to_json(record: dict[str, Any], offset: int) -> dict[str, Any]:
    """An alerts-topic record as the feed shows it (dates as ISO strings, with its feed id)."""
    out: dict[str, Any] = {"id": offset}
    for k, v in record.items():
        out[k] = v.isoformat() if isinstance(v, dt.date | dt.datetime) else v
    return out


class AlertLog:
    """Every transition on the alerts topic, in order, and the latest per alert."""

    def __init__(self, bootstrap: list[str], topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.entries: list[dict[str, Any]] = []  # feed JSON, in topic order; entry["id"] = offset
        self.current: dict[str, dict[str, Any]] = {}  # fingerprint -> latest feed JSON
        self.position = 0  # next offset to read
        self.changed = asyncio.Condition()
        self._probe: Any = None

    def state_of(self) -> dict[str, str]:
        return {fp: rec["state"] for fp, rec in self.current.items()}

    def since(self, after: int) -> list[dict[str, Any]]:
        """Entries with id > ``after``."""
        lo, hi = 0, len(self.entries)
        while lo < hi:  # ids are increasing: binary search
            mid = (lo + hi) // 2
            if self.entries[mid]["id"] <= after:
                lo = mid + 1
            else:
                hi = mid
        return self.entries[lo:]

    async def wait_after(self, after: int, timeout_s: float) -> None:
        async with self.changed:
            if self.entries and self.entries[-1]["id"] > after:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout_s)

    async def add(self, offset: int, value: bytes) -> None:
        try:
            record = ALERTS.decode(value)
        except Exception:  # not ours to judge: the topic is written only by the leader
            log.error("unreadable record on %s at offset %d; skipped", self.topic, offset)
            return
        entry = to_json(record, offset)
        self.remember(entry)
        self.entries.append(entry)
        async with self.changed:
            self.changed.notify_all()

    def remember(self, entry: dict[str, Any]) -> None:
        """Make ``entry`` the alert's latest state; ``fired_at`` carries over to its resolution."""
        before = self.current.get(entry["fingerprint"])
        if entry["state"] == "firing":
            entry["fired_at"] = entry["transition_at"]
        else:
            entry["fired_at"] = before.get("fired_at") if before else None
        self.current[entry["fingerprint"]] = entry

    async def follow(self) -> None:
        tp = TopicPartition(self.topic, 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    if msg.value is not None:
                        await self.add(msg.offset, msg.value)
                # past the transactions' commit markers too, which are never returned as records
                self.position = await consumer.position(tp)
        finally:
            await consumer.stop()

    async def caught_up(self, timeout_s: float = 5.0) -> bool:
        """Whether everything committed on the topic now has been read, waiting up to
        ``timeout_s`` for the follower. Asks the broker for the end (the last stable offset):
        the follower's own view may be a fetch old, and a previous leader may just have written."""
        tp = TopicPartition(self.topic, 0)
        if self._probe is None:  # one long-lived consumer, used only to ask for end offsets
            self._probe = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
            )
            await self._probe.start()
        end = (await self._probe.end_offsets([tp]))[tp]
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.position < end:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                await probe.stop()


class Fenced(Exception):
    """Another worker has started writing alerts: this one is no longer the leader."""


class AlertWriter:
    """The one writer of the alerts topic: a transactional producer whose transactional id is
    the same in every worker of a deployment, so at most one of them can write at a time.

    ``claim`` starts the producer; the broker then fences the previous holder and aborts its open
    transaction. ``write`` sends one evaluation's transitions in one transaction. ``release``
    closes the producer when this worker stops leading."""

    def __init__(self, bootstrap: list[str], topic: str, transactional_id: str) -> None:
        self.bootstrap, self.topic, self.transactional_id = bootstrap, topic, transactional_id
        self._producer: Any = None

    @property
    def claimed(self) -> bool:
        return self._producer is not None

    async def claim(self) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                transactional_id=self.transactional_id,
                enable_idempotence=True,
                acks="all",
            )
            await producer.start()  # InitProducerId: fences every earlier holder of the id
            self._producer = producer

    async def write(self, records: list[tuple[bytes, bytes]]) -> list[int]:
        """Send ``(key, value)`` records in one transaction; their offsets once committed.
        Raises ``Fenced`` (nothing was written) if another worker has claimed the topic since."""
        await self.claim()
        producer = self._producer
        try:
            async with producer.transaction():
                sent = [
                    await producer.send(self.topic, value, key=key, partition=0) for key, value in records
                ]
                metas = [await fut for fut in sent]
        except ProducerFenced as exc:
            await self.release()
            raise Fenced(f"another worker now writes {self.topic}") from exc
        except KafkaError:
            await self.release()  # the transaction is aborted; a fresh producer next time
            raise
        return [m.offset for m in metas]

    async def release(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


def retired(entry: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The resolved record of a firing alert whose rule was removed from the rules file."""
    record = {k: v for k, v in entry.items() if k not in ("id", "fired_at")}
    record.update(state="resolved", transition_at=now, description=f"rule removed: {entry['description']}")
    for k in ("window_start", "window_end"):
        record[k] = dt.date.fromisoformat(entry[k])
    return record


def with_refs(t: Transition, refs: dict[tuple[str, ...], list[str]]) -> Transition:
    """``t`` with up to 10 pseudonyms of the crimes its rule counted in the window."""
    r, e = t.rule, t.evaluation
    first, last = e.window_start.isoformat(), e.window_end.isoformat()
    out: list[str] = []
    for (force, category, disposal, day, da), pseudonyms in sorted(refs.items()):
        if (
            force != e.force
            or category != e.category
            or disposal not in r.disposals
            or not first <= day <= last
        ):
            continue
        if r.domestic_abuse is not None and (da == "true") != r.domestic_abuse:
            continue
        out.extend(p for p in pseudonyms if p not in out)
    return dataclasses.replace(t, crime_refs=tuple(out[:10]))


def register(dw: DisposalApp, cluster: Cluster, rules: list[Rule], scoped: Any) -> AlertLog:
    app, settings = dw.app, dw.settings
    alert_log = AlertLog(settings.kafka.split(","), settings.alerts_topic)
    writer = AlertWriter(settings.kafka.split(","), settings.alerts_topic, f"{settings.app_id}-alerts")
    by_id = {r.id: r for r in rules}
    span_days = 2 * max((r.window_days for r in rules), default=1)  # spike looks one window back
    firing_labels: dict[str, tuple[str, str, str, str]] = {}

    @app.task
    async def follow_alerts() -> None:
        await alert_log.follow()

    async def close_clients(sender: Any, **kwargs: Any) -> None:
        await writer.release()
        await alert_log.close()

    app.on_before_shutdown.connect(close_clients)

    if settings.webhooks_file is not None:
        from streams.webhooks import deliver_forever, load_webhooks

        def count(name: str, ok: bool) -> None:
            metrics.WEBHOOK_ATTEMPTS.labels(name, "delivered" if ok else "failed").inc()

        def delivery(hook: Any) -> Any:
            async def deliver() -> None:  # no parameters: Faust would pass the app
                await deliver_forever(
                    hook,
                    settings.kafka.split(","),
                    settings.alerts_topic,
                    f"{settings.app_id}-webhook-{hook.name}",
                    settings.webhook_max_backoff_s,
                    on_result=count,
                )

            return deliver

        for hook in load_webhooks(settings.webhooks_file):
            app.task(delivery(hook))

    def is_leader() -> bool:
        return any(
            tp.topic == settings.disposals_topic and tp.partition == 0
            for tp in app.assignor.assigned_actives()
        )

    async def evaluate_once() -> int:
        """One evaluation on the leader; returns the number of transitions emitted."""
        if not is_leader():
            await writer.release()
            return 0
        if dw.recovering:
            return 0
        await writer.claim()  # first: from here no earlier leader can write
        if not await alert_log.caught_up():
            return 0
        at = await cluster.today()
        if at is None:
            return 0
        rows, recovering, _ = await cluster.rows(DIMENSIONS, at - dt.timedelta(days=span_days - 1), at)
        if recovering:
            return 0
        counts = {
            (f, c, d, dt.date.fromisoformat(day), da == "true"): n for (f, c, d, day, da), n in rows.items()
        }
        evals = evaluate(rules, counts, at=at, forces=FORCE_NAMES)
        now = dt.datetime.now(dt.UTC)
        found = transitions(evals, alert_log.state_of(), by_id, at=now)
        if any(t.state == "firing" and t.rule.measure in ("count", "case") for t in found):
            refs = await cluster.refs(at - dt.timedelta(days=span_days - 1), at)
            found = [with_refs(t, refs) if t.rule.measure in ("count", "case") else t for t in found]
        # alerts of rules no longer in the file resolve (a rules change takes effect on restart)
        out: list[tuple[str, str, str, dict[str, Any]]] = [
            (fp, entry["rule_id"], "resolved", retired(entry, now))
            for fp, entry in alert_log.current.items()
            if entry["state"] == "firing" and entry["rule_id"] not in by_id
        ]
        out += [(t.fingerprint, t.rule.id, t.state, t.record()) for t in found]
        if not out:
            return 0
        offsets = await writer.write([(fp.encode(), ALERTS.encode(record)) for fp, _, _, record in out])
        # committed: from here the transitions are on the topic (the follower will read the same)
        for (_, rule_id, state, record), offset in zip(out, offsets, strict=True):
            alert_log.remember(to_json(record, offset))
            metrics.ALERT_TRANSITIONS.labels(rule_id, state).inc()
        for t in found:
            labels = (t.rule.id, t.evaluation.force, t.evaluation.category, t.rule.severity)
            if t.state == "firing":
                metrics.ALERTS_FIRING.labels(*labels).set(1)
                firing_labels[t.fingerprint] = labels
            elif t.fingerprint in firing_labels:
                metrics.ALERTS_FIRING.remove(*firing_labels.pop(t.fingerprint))
        return len(out)

    @app.task
    async def evaluate_alerts() -> None:
        """Every DW_ALERT_INTERVAL_S, or at once when this worker counted a case-rule breach."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dw.evaluate_soon.wait(), settings.alert_interval_s)
            dw.evaluate_soon.clear()
            try:
                n = await evaluate_once()
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

    def matches(entry: dict[str, Any], q: Any, scope: Scope) -> bool:
        if not scope.allows(entry["force_id"]):
            return False
        for field, key in (("force", "force_id"), ("category", "category"), ("severity", "severity")):
            if q.get(field) and entry[key] != q[field]:
                return False
        return True

    @app.page("/api/alerts")
    @scoped
    async def alerts_page(view: Any, request: Any, scope: Scope) -> Any:
        q = request.query
        state = q.get("state", "firing")
        if state not in ("firing", "resolved", "all"):
            return view.json({"error": "state must be firing, resolved or all"}, status=400)
        items = [
            e
            for e in alert_log.current.values()
            if (state == "all" or e["state"] == state) and matches(e, q, scope)
        ]
        items.sort(key=lambda e: (e["rule_id"], e["force_id"], e["category"]))
        return view.json({"alerts": items, "position": alert_log.position})

    @app.page("/api/alerts/stream")
    @scoped
    async def alerts_stream(view: Any, request: Any, scope: Scope) -> Any:
        """Server-sent events: every transition, in order; reconnect with Last-Event-ID to resume."""
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or "-1"
        try:
            after = int(last)
        except ValueError:
            return view.json({"error": f"Last-Event-ID must be a number, not {last!r}"}, status=400)
        resp = aiohttp.web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        q = request.query
        try:
            while True:
                for entry in alert_log.since(after):
                    after = entry["id"]
                    if matches(entry, q, scope):
                        await resp.write(f"id: {after}\nevent: alert\ndata: {json.dumps(entry)}\n\n".encode())
                await alert_log.wait_after(after, KEEPALIVE_S)
                if not alert_log.since(after):
                    await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    return alert_log
