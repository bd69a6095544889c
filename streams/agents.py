"""The worker's agent: a thin shell around ``streams.counting``.

Per record: decode, look up the crime, ``count_event``, store the crime's new state, count it
in metrics. Bad records go to the dead-letter topic with their original bytes and a reason in
the headers; they never stop the stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from alerts.engine import breaches
from streams import metrics
from streams.app import DisposalApp
from streams.buckets import DayCounts
from streams.codec import decode_held, decode_outcome, encode_held
from streams.counting import count_event, pseudonym
from streams.crimes import Change
from streams.errors import DecodeError, RejectedEvent

log = logging.getLogger(__name__)


def dead_letter_headers(
    reason: str, error: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record; its value and key are the original bytes."""
    return [
        ("dw.reason", reason.encode()),
        ("dw.error", error.encode()[:2000]),
        ("dw.topic", topic.encode()),
        ("dw.partition", str(partition).encode()),
        ("dw.offset", str(offset).encode()),
        ("dw.rejected_at", dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").encode()),
    ]


class WallClock:
    """UTC calendar date, read at most once a second."""

    def __init__(self) -> None:
        self._at = 0.0
        self._today = dt.datetime.now(dt.UTC).date()

    def today(self) -> dt.date:
        now = time.monotonic()
        if now - self._at > 1.0:
            self._at = now
            self._today = dt.datetime.now(dt.UTC).date()
        return self._today


#: how often the worker checks that it is taking records when records wait
STALL_CHECK_S = 10.0
#: exit code of a worker that stalled (DW_STALL_EXIT_S): its supervisor should restart it
EXIT_STALLED = 75


def register(dw: DisposalApp) -> None:
    settings = dw.settings
    app, crimes = dw.app, dw.crimes
    keep_days = settings.retention_days
    secret = settings.pseudonym_key.encode()
    wall = WallClock()
    stream_clock = settings.clock == "stream"
    event_counters: dict[tuple[str, str, str], Any] = {}
    #: offset of the last record taken, per partition (for the stall watch)
    taken: dict[int, int] = {}
    changes = {c: metrics.CHANGES.labels(c.value) for c in Change}

    def accepted(force: str, category: str, disposal: str) -> Any:
        key = (force, category, disposal)
        c = event_counters.get(key)
        if c is None:
            c = event_counters[key] = metrics.EVENTS.labels(force, category, disposal)
        return c

    def counts_for(partition: int) -> DayCounts:
        c = dw.counts.get(partition)
        if c is None:
            c = dw.counts[partition] = DayCounts()
        return c

    def prune(counts: DayCounts, today: dt.date | None) -> None:
        if today is None:
            return
        horizon = today - dt.timedelta(days=keep_days)
        if counts.floor is None or horizon > counts.floor:
            counts.prune(horizon)

    metrics.CRIMES.set_function(lambda: sum(n for c in list(dw.counts.values()) for _, n in c.cells()))

    def refresh_gauges() -> None:
        newest: dt.date | None = None
        for c in dw.counts.values():
            if c.newest is not None and (newest is None or c.newest > newest):
                newest = c.newest
        if newest is not None:
            metrics.STREAM_DAY.set(
                dt.datetime(newest.year, newest.month, newest.day, tzinfo=dt.UTC).timestamp()
            )

    async def reject(event: Any, reason: str, error: str) -> None:
        msg = event.message
        log.warning("dead-lettered %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset, reason, error)
        metrics.REJECTED.labels(reason).inc()
        await dw.dead_letters.send(
            key=msg.key,
            value=msg.value,
            headers=dead_letter_headers(reason, error, msg.topic, msg.partition, msg.offset),
        )

    def breaches_any(cell: Any) -> bool:
        return any(
            breaches(
                r,
                category=cell.category,
                disposal=cell.disposal,
                domestic_abuse=cell.domestic_abuse,
            )
            for r in dw.case_rules
        )

    async def count_one(event: Any) -> None:
        dw.processed += 1
        partition = event.message.partition
        taken[partition] = event.message.offset
        raw = event.value
        if not isinstance(raw, bytes | bytearray):
            await reject(event, "undecodable", "record has no value (tombstone)")
            return
        try:
            ev = decode_outcome(bytes(raw))
        except DecodeError as exc:
            await reject(event, exc.reason, str(exc))
            return
        counts = counts_for(partition)
        wall_today = wall.today()
        today = counts.newest if stream_clock else wall_today
        key = ev.crime_key.encode()
        # the store's own get: one lookup (the table's get asks `in` first, then reads)
        stored = crimes.data.get(key)
        held = decode_held(stored)[0] if stored is not None else None
        try:
            applied = count_event(
                ev,
                held,
                counts,
                today=today,
                latest_day=wall_today + dt.timedelta(days=1),
                keep_days=keep_days,
                offset=event.message.offset,
                secret=secret,
            )
        except RejectedEvent as exc:
            await reject(event, exc.reason, str(exc))
            return
        if applied.state is not None:
            crimes[key] = encode_held(applied.state, partition)
        accepted(ev.force_id, applied.cell.category, ev.disposal).inc()
        changes[applied.change].inc()
        if applied.change is Change.NEW or applied.change is Change.MOVED:
            prune(counts, counts.newest if stream_clock else wall_today)
            if dw.case_rules and breaches_any(applied.cell):
                dw.evaluate_soon.set()

    @app.agent(dw.disposals, name="count_outcomes")
    async def count_outcomes(stream: Any) -> None:
        async for event in stream.events():
            try:
                await count_one(event)
            except Exception:
                # Faust acks the event an agent raised on, and a restarted agent would carry on
                # after it: the record would be lost. A bug must not lose data, so the process
                # ends here, before any commit past this record; restarted, it is redelivered.
                msg = event.message
                log.critical(
                    "bug while processing %s[%d]@%d; exiting without committing it",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    exc_info=True,
                )
                logging.shutdown()
                os._exit(70)

    @app.timer(interval=5.0)
    async def gauges() -> None:
        refresh_gauges()

    watch = {"processed": -1, "stalled_s": 0.0}
    probe: dict[str, Any] = {}  # "consumer": our own, only for end offsets

    @app.timer(interval=STALL_CHECK_S)
    async def stall_watch() -> None:
        """When records wait on an assigned partition but none was taken for a while, log what
        the consumer, the producer and the commit guard are doing; after DW_STALL_EXIT_S, exit
        so that a supervisor restarts the worker (nothing past the last commit is lost)."""
        processed, watch["processed"] = watch["processed"], dw.processed
        if dw.processed != processed or dw.recovering:
            watch["stalled_s"] = 0.0
            return
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic == dw.settings.disposals_topic]

        async def look() -> tuple[dict[int, int | str], list[int]]:
            # end offsets from the broker through a consumer of our own: Faust's consumer may be
            # what hangs, and questions through its thread must not disturb its fetching
            ends_of = probe.get("consumer")
            if ends_of is None:
                ends_of = AIOKafkaConsumer(
                    bootstrap_servers=dw.settings.kafka.split(","), enable_auto_commit=False
                )
                await ends_of.start()
                probe["consumer"] = ends_of
            ends = await ends_of.end_offsets(tps) if tps else {}
            found: dict[int, int | str] = {}
            for tp in tps:
                last = taken.get(tp.partition)
                end = ends.get(tp)
                if last is not None and end is not None and end > last + 1:
                    found[tp.partition] = end - last - 1
            kafka_consumer = consumer._thread._ensure_consumer()  # aiokafka's, for paused()
            return found, sorted(tp.partition for tp in kafka_consumer.paused() if tp in tps)

        try:
            waiting, paused = await asyncio.wait_for(look(), STALL_CHECK_S / 2)
        except TimeoutError:
            log.warning("stall watch: the broker did not answer for end offsets")
            return
        except Exception as exc:  # a diagnostic must never take the worker down
            log.warning("stall watch could not look: %r", exc)
            return
        if not waiting:
            watch["stalled_s"] = 0.0
            return
        watch["stalled_s"] += STALL_CHECK_S
        stalled = watch["stalled_s"]
        detail = (
            f"no record taken for {stalled:.0f} s while partitions have records waiting {waiting}; "
            f"paused={paused} flow_active={consumer.flow_active} "
            f"suspend_flow={consumer.suspend_flow.is_set()} "
            f"producer_buffer={app.producer.buffer.size} "
            f"unacknowledged={len(dw.unacked) if dw.unacked is not None else -1}"
        )
        limit = dw.settings.stall_exit_s
        if limit and stalled >= limit:
            log.critical("%s: exiting (code %d) to be restarted", detail, EXIT_STALLED)
            logging.shutdown()
            os._exit(EXIT_STALLED)
        if stalled % 30 < STALL_CHECK_S:
            log.warning("%s", detail)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        dw.recovering = True
        for tp in revoked:
            if tp.topic == dw.settings.disposals_topic:
                dw.counts.pop(tp.partition, None)

    app.on_partitions_revoked.connect(on_revoked)

    @crimes.on_recover
    async def rebuild_counts() -> None:
        """Counts are derived state: rebuild them from the recovered crimes of our partitions."""
        started = time.monotonic()
        actives = {
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == dw.settings.disposals_topic
        }
        fresh: dict[int, DayCounts] = {p: DayCounts() for p in actives}
        n = 0
        for key, value in crimes.items():
            held, partition = decode_held(value)
            if partition in fresh:
                fresh[partition].add(held.cell, pseudonym(key.decode(), secret))
                n += 1
        for c in fresh.values():
            prune(c, c.newest if stream_clock else wall.today())
        dw.counts = fresh
        dw.recovering = False
        metrics.PARTITIONS.set(len(actives))
        metrics.REBUILD_SECONDS.observe(time.monotonic() - started)
        refresh_gauges()
        log.info(
            "counts rebuilt from %d crimes in %d partitions in %.2fs",
            n,
            len(actives),
            time.monotonic() - started,
        )
