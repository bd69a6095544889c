"""The ``disposal-watch`` command. Configures logging; every subcommand is a thin shell.

Exit codes: 0 success; 1 done, but some input rows were skipped as errors (or ``wait`` timed
out); 2 nothing done: bad configuration, unreachable Kafka, unusable input file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import json
import logging
import os
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from alerts.errors import AlertError
from streams.errors import ConfigError, InputError, StreamError
from streams.model import OutcomeEvent
from streams.policeuk import EXPECTED_SKIPS
from streams.settings import Settings, load_settings

if TYPE_CHECKING:
    from streams.ingest import Encoded

log = logging.getLogger("disposal-watch")
MAX_ROW_ERRORS_SHOWN = 20


def _settings() -> Settings:
    return load_settings()


def _fail(exc: BaseException) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `counts | head`: the reader has what it wanted; not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (StreamError, AlertError) as exc:
            _fail(exc)
        except Exception as exc:
            from kafka.errors import KafkaError

            if isinstance(exc, KafkaError):
                from streams.producer import describe

                _fail(ConfigError(f"Kafka at DW_KAFKA answered with an error: {describe(exc)}"))
            raise


@click.group(cls=_Group)
@click.version_option(package_name="disposal-watch")
def main() -> None:
    """disposal-watch: alerts on out-of-court disposals of high-risk crimes."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # we report connection failures ourselves
    # mode's timers log each wake-up that a busy event loop delayed: harmless, and many
    logging.getLogger("mode.timers").setLevel(logging.WARNING)


# --- kafka ------------------------------------------------------------------------------------


@main.group(cls=_Group)
def kafka() -> None:
    """Run a local single-node Apache Kafka broker (KRaft) without Docker."""


@kafka.command("start")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), required=True, help="Broker state directory.")
@click.option("--port", type=click.IntRange(1, 65535), default=9092, show_default=True)
@click.option(
    "--brokers",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Nodes (each broker and controller); more than one: state in DIR/node<i>, ports from --port on.",
)
def kafka_start(dir_: Path, port: int, brokers: int) -> None:
    """Resolve Kafka from Maven Central (cached), format storage, start; print the bootstrap address."""
    from streams import kafka_local

    if brokers == 1:
        click.echo(kafka_local.start(dir_, port).bootstrap)
    else:
        click.echo(",".join(b.bootstrap for b in kafka_local.start_cluster(dir_, port, brokers)))


@kafka.command("stop")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), required=True)
def kafka_stop(dir_: Path) -> None:
    """Stop the broker (or every node of the cluster) started from DIR."""
    from streams import kafka_local

    for broker in kafka_local.stop_all(dir_):
        click.echo(f"stopped broker pid {broker.pid} ({broker.bootstrap})", err=True)


@main.group(cls=_Group)
def registry() -> None:
    """Run a local Apicurio Registry (Confluent-compatible API) without Docker."""


@registry.command("start")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), required=True, help="Pid and log directory.")
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
def registry_start(dir_: Path, port: int) -> None:
    """Resolve Apicurio Registry from Maven Central (cached), start it with a Java 21+ found on
    the machine; print the URL to give DW_SCHEMA_REGISTRY_URL."""
    from streams import registry_local

    click.echo(registry_local.start(dir_, port).url)


@registry.command("stop")
@click.option("--dir", "dir_", type=click.Path(path_type=Path), required=True)
def registry_stop(dir_: Path) -> None:
    """Stop the registry started from DIR."""
    from streams import registry_local

    stopped = registry_local.stop(dir_)
    click.echo(f"stopped registry pid {stopped.pid} ({stopped.url})", err=True)


# --- worker -----------------------------------------------------------------------------------


def _port_free(settings: Settings) -> None:
    """Refuse, in one line, a web address another process holds (else Faust's server fails deep
    inside its start with a long traceback)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.web_host, settings.web_port))
        except OSError as exc:
            raise ConfigError(
                f"DW_WEB_PORT={settings.web_port}: cannot listen on {settings.web_host}:{settings.web_port} "
                f"({exc.strerror}); is another worker running there? give each worker its own DW_WEB_PORT"
            ) from None


@main.command()
def worker() -> None:
    """Run the stream worker (consumes disposals; serves /metrics, /healthz, /api/counts)."""
    settings = _settings()
    from streams import datadir, keys
    from streams.producer import ensure_topics

    datadir.prepare(settings.data_dir)
    secrets = keys.derive(keys.master_key(settings))
    _port_free(settings)
    ensure_topics(settings)  # also checks that DW_KAFKA answers
    from streams.schema_registry import register_now

    registered = register_now(settings)  # with DW_SCHEMA_REGISTRY_URL: the project's schemas
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from streams.app import build
    from streams.codec import EVENT_READER

    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    worker = build(settings, secrets, registered)
    log.info(
        "worker %s: kafka %s, web %s, clock %s, store %s, %d alert rules from %s, %s event reader",
        settings.app_id,
        settings.kafka,
        settings.web_url,
        settings.clock,
        settings.store,
        len(worker.evaluator.rules),
        settings.rules,
        EVENT_READER,
    )
    if EVENT_READER != "compiled":
        log.warning(
            "the compiled event reader was not built (no C compiler at install?): events are "
            "read in Python, at about half the counting rate"
        )
    worker.run()


# --- ingestion --------------------------------------------------------------------------------


def _bar(desc: str) -> Any:
    """A progress bar of rows on a terminal (none when stderr is not one)."""
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" rows", disable=not sys.stderr.isatty(), mininterval=0.5)


class _RowErrors:
    def __init__(self) -> None:
        self.shown = 0
        self.total = 0

    def __call__(self, exc: InputError) -> None:
        if exc.reason in EXPECTED_SKIPS:  # counted in the summary, not an error in the file
            return
        self.total += 1
        if self.shown < MAX_ROW_ERRORS_SHOWN:
            self.shown += 1
            click.echo(f"skipped {exc} [{exc.reason}]", err=True)
        elif self.shown == MAX_ROW_ERRORS_SHOWN:
            self.shown += 1
            click.echo("... further skipped rows are only counted in the summary", err=True)


def _send_all(settings: Settings, events: Iterable[OutcomeEvent], desc: str) -> tuple[int, int]:
    from streams.producer import EventProducer

    with EventProducer(settings) as producer, _bar(desc) as bar:
        producer.ensure_topics()
        for ev in events:
            producer.send(ev)
            bar.update()
    return producer.stats.sent, producer.stats.failed


def _summary(rows: int, sent: int, failed: int, skipped: dict[str, int]) -> int:
    parts = [f"rows read {rows}", f"events sent {sent - failed}"]
    if failed:
        parts.append(f"send failures {failed}")
    skipped_text = ", ".join(f"{r} {n}" for r, n in sorted(skipped.items())) or "none"
    click.echo("; ".join(parts) + f"; rows skipped: {skipped_text}", err=True)
    errors = failed or any(r not in EXPECTED_SKIPS for r in skipped)
    return 1 if errors else 0


@main.group(cls=_Group)
def ingest() -> None:
    """Send events from files to the disposals topic."""


@ingest.command("policeuk")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def ingest_policeuk(files: tuple[Path, ...]) -> None:
    """police.uk street and/or outcomes CSV files (street files are read first)."""
    from streams.ingest import policeuk_encoded

    settings = _settings()
    chunks = policeuk_encoded(files, _ingest_workers(settings))  # a bad header stops the run here
    sys.exit(_summary(*_send_encoded(settings, chunks, "police.uk")))


@ingest.command("jsonl")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def ingest_jsonl(files: tuple[Path, ...]) -> None:
    """Files of events in the project's JSON form, one object a line (see README)."""
    from streams.ingest import encoded, jsonl_tasks

    settings = _settings()
    chunks = encoded(jsonl_tasks(files), _ingest_workers(settings))
    sys.exit(_summary(*_send_encoded(settings, chunks, "jsonl")))


def _ingest_workers(settings: Settings) -> int:
    from streams.ingest import default_workers

    return settings.ingest_workers or default_workers()


def _send_encoded(
    settings: Settings, chunks: Iterable[Encoded], desc: str
) -> tuple[int, int, int, dict[str, int]]:
    """Send the records of ``chunks`` (encoded in worker processes: ``streams.ingest``) in their
    order; (rows, sent, failed, skipped by reason)."""
    from streams.producer import EventProducer

    report = _RowErrors()
    rows = 0
    skipped: dict[str, int] = {}
    with EventProducer(settings) as producer, _bar(desc) as bar:
        producer.ensure_topics()
        for chunk in chunks:
            producer.send_records(chunk.records)
            for reason, message in chunk.skipped:
                skipped[reason] = skipped.get(reason, 0) + 1
                if message:
                    report(InputError(message, reason=reason))
            rows += chunk.rows
            bar.update(chunk.rows)
    return rows, producer.stats.sent, producer.stats.failed, skipped


@main.command()
@click.option("--events", type=click.IntRange(min=1), default=None, help="How many events.")
@click.option(
    "--story",
    is_flag=True,
    help="Send the demo's scenario (two forces settling high-risk crimes out of court; "
    "streams/simulate.py), dated up to --end.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Newest outcome date [today, UTC].",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=365,
    show_default=True,
    help="Outcome dates span this many days.",
)
@click.option("--rate", type=float, default=0.0, help="Events per second (0: as fast as possible).")
@click.option(
    "--order",
    type=click.Choice(["date", "random"]),
    default="date",
    show_default=True,
    help="date: every event in date order, as a feed or a backfill arrives; random: crimes in "
    "random order (the stream clock then jumps to the newest date at once).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JSONL here instead of sending.",
)
def simulate(
    events: int | None,
    story: bool,
    seed: int,
    end: dt.datetime | None,
    days: int,
    rate: float,
    order: str,
    out: Path | None,
) -> None:
    """Synthetic events for all 45 forces, sized and mixed plausibly (see streams/simulate.py)."""
    from streams.simulate import simulate as generate
    from streams.simulate import story as scenario

    if events is None and not story:
        raise click.UsageError("give --events N, --story, or both")
    stream: Iterable[OutcomeEvent] = scenario(end.date() if end else None) if story else []
    if events is not None:
        stream = itertools.chain(
            stream,
            generate(events, seed=seed, end=end.date() if end else None, days=days, ordered=order == "date"),
        )
    if rate > 0:
        stream = _paced(stream, rate)
    if out is not None:
        written = 0
        with out.open("w", encoding="utf-8") as f:
            for ev in stream:
                f.write(json.dumps(ev.to_json_dict()) + "\n")
                written += 1
        click.echo(f"wrote {written} events to {out}", err=True)
        return
    sent, failed = _send_all(_settings(), stream, "simulate")
    sys.exit(_summary(sent, sent, failed, {}))


def _paced(events: Iterable[OutcomeEvent], rate: float) -> Iterator[OutcomeEvent]:
    start = time.monotonic()
    for i, ev in enumerate(events):
        ahead = start + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield ev


# --- access ---------------------------------------------------------------------------------


@main.group(cls=_Group)
def token() -> None:
    """Bearer tokens for the alert feed (stored hashed in DW_TOKENS_FILE)."""


@token.command("new")
@click.option("--name", required=True, help="Who the token is for.")
@click.option("--forces", default="all", show_default=True, help="'all' or force ids, comma-separated.")
@click.option(
    "--reidentify", is_flag=True, help="May turn its forces' crime pseudonyms back into references (logged)."
)
@click.option(
    "--append",
    "append_to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Add the entry to this tokens file (made, with its 'tokens:' header, if missing).",
)
def token_new(name: str, forces: str, reidentify: bool, append_to: Path | None) -> None:
    """Make a token: prints it once (stderr) and a tokens file holding its entry (stdout), or adds
    the entry to FILE with --append."""
    import secrets

    from streams.access import digest, load_tokens
    from streams.reference import FORCE_NAMES

    scope: str | list[str] = "all"
    if forces != "all":
        scope = [f.strip() for f in forces.split(",") if f.strip()]
        bad = [f for f in scope if f not in FORCE_NAMES]
        if bad:
            raise ConfigError(f"--forces: unknown force id {', '.join(bad)}")
    value = secrets.token_urlsafe(32)
    click.echo(f"token for {name} (shown once; give it to them, keep only the hash): {value}", err=True)
    permissions = ", permissions: [reidentify]" if reidentify else ""
    entry = (
        f"  - {{name: {json.dumps(name)}, sha256: {digest(value)}, forces: {json.dumps(scope)}{permissions}}}"
    )
    if append_to is None:
        click.echo(f"tokens:\n{entry}")
        return
    text = append_to.read_text(encoding="utf-8") if append_to.exists() else ""
    if not text.strip():
        text = "tokens:\n"
    elif not text.endswith("\n"):
        text += "\n"
    append_to.write_text(text + entry + "\n", encoding="utf-8")
    load_tokens(append_to, set(FORCE_NAMES))  # the file must still load
    click.echo(f"added {name} to {append_to}", err=True)


# --- queries ----------------------------------------------------------------------------------


class _NotReady(StreamError):
    """The worker answered 503 with Retry-After (restoring) for longer than the CLI waits."""


def _get_json(url: str, settings: Settings, wait_s: float = 0.0) -> Any:
    """GET ``url`` as JSON. A 503 with ``Retry-After`` (a worker restoring: the figure would be
    partial) is asked again for up to ``wait_s``; then ``_NotReady``."""
    import urllib.error  # here: urllib.request is slow to import, and ingest never needs it
    import urllib.request

    from streams.tls import client_context

    req = urllib.request.Request(url)
    if settings.token:
        req.add_header("Authorization", f"Bearer {settings.token.get_secret_value()}")
    until = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(
                req, timeout=60, context=client_context(settings.web_tls_cert)
            ) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                body = json.loads(body).get("error", body)
            retry = exc.headers.get("Retry-After")
            if exc.code == 503 and retry is not None and retry.isdigit():
                if time.monotonic() + int(retry) > until:
                    raise _NotReady(f"no figure after {wait_s:.0f} s: {body}") from None
                time.sleep(int(retry))
                continue
            raise ConfigError(f"{url}: HTTP {exc.code}: {body}") from None
        except urllib.error.URLError as exc:
            raise ConfigError(
                f"cannot reach the worker at {url} ({exc.reason}); is it running? "
                "check DW_WEB_HOST/DW_WEB_PORT"
            ) from None


@main.command()
@click.option("--group-by", default="force,category,disposal", show_default=True)
@click.option("--window", default="all", show_default=True, help="'all' or N days, e.g. 28d.")
@click.option("--at", default=None, help="Last day of the window, YYYY-MM-DD [today by DW_CLOCK].")
@click.option("--url", default=None, help="Worker URL [http://DW_WEB_HOST:DW_WEB_PORT].")
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for a worker to restore."
)
def counts(group_by: str, window: str, at: str | None, url: str | None, timeout: float) -> None:
    """Print counts as CSV (header row, last column `count`, sorted, zero cells left out).

    Never a partial figure: while a worker restores partitions from the changelog, waits (up to
    --timeout), then exits 1."""
    settings = _settings()
    params = {"group_by": group_by, "window": window}
    if at:
        params["at"] = at
    where = f"{url or settings.web_url}/api/counts?{urllib.parse.urlencode(params)}"
    try:
        data = _get_json(where, settings, wait_s=timeout)
    except _NotReady as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    dims = data["group_by"]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([*dims, "count"])
    for row in data["rows"]:
        out.writerow([*(row[d] for d in dims), row["count"]])
    sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at exit


#: (CSV column, alert field) for `disposal-watch alerts`
ALERT_COLUMNS = (
    ("rule", "rule_id"),
    ("force", "force_id"),
    ("category", "category"),
    ("state", "state"),
    ("severity", "severity"),
    ("measure", "measure"),
    ("value", "value"),
    ("threshold", "threshold"),
    ("numerator", "numerator"),
    ("denominator", "denominator"),
    ("p0", "p0"),
    ("limit", "limit"),
    ("interval_low", "interval_low"),
    ("interval_high", "interval_high"),
    ("window_start", "window_start"),
    ("window_end", "window_end"),
    ("fired_at", "fired_at"),
    ("summary", "summary"),
    ("description", "description"),
    ("refs", "crime_refs"),
)


def alert_cell(value: Any) -> str:
    """A CSV cell for people: floats to 4 significant digits, lists space-separated."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


@main.command()
@click.option(
    "--state", type=click.Choice(["firing", "resolved", "all"]), default="firing", show_default=True
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--url", default=None, help="Worker URL [http://DW_WEB_HOST:DW_WEB_PORT].")
def alerts(state: str, fmt: str, url: str | None) -> None:
    """Print the current alerts. CSV columns: rule, force, category, state, severity, measure,
    value, threshold, numerator, denominator, p0, limit, interval_low, interval_high,
    window_start, window_end, fired_at, summary, description, refs (numbers rounded to 4
    significant digits; the JSON keeps them exact)."""
    settings = _settings()
    data = _get_json(f"{url or settings.web_url}/api/alerts?state={state}", settings)
    if fmt == "json":
        click.echo(json.dumps(data["alerts"], indent=2))
        return
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow([column for column, _ in ALERT_COLUMNS])
    for a in data["alerts"]:
        out.writerow([alert_cell(a.get(field)) for _, field in ALERT_COLUMNS])
    sys.stdout.flush()


@main.command()
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait.")
def wait(timeout: float) -> None:
    """Exit 0 once the worker group has processed every record produced before this command
    started (a live feed keeps producing; those records are not waited for), 1 on timeout."""
    from kafka.errors import KafkaError

    from streams.producer import end_offsets, lag

    settings = _settings()
    deadline = time.monotonic() + timeout
    ends: dict[int, int] | None = None  # taken once: what was produced when `wait` was called
    error: KafkaError | None = None
    while True:
        # a fresh broker's group coordinator not up yet, a coordinator or leader on a broker just
        # lost (UnknownBrokerIdError until the metadata moves on): asked again, until the deadline
        try:
            if ends is None:
                ends = end_offsets(settings)
            behind: dict[int, int] | None = lag(settings, ends)
        except KafkaError as exc:
            error, behind = exc, None
        if behind is not None and not any(behind.values()):
            break
        if time.monotonic() >= deadline:
            left = "an unknown number of" if behind is None else str(sum(behind.values()))
            last = ""
            if behind is None and error is not None:
                last = f" (the brokers last answered: {type(error).__name__}: {error})"
            click.echo(f"timed out with {left} records not yet processed{last}", err=True)
            sys.exit(1)
        time.sleep(0.5)
    # committed is not yet readable: a worker may still be restoring its partitions' crimes from
    # the changelog (after a start with an empty data directory, or a rebalance)
    while (why := _not_ready(settings, set(ends or ()))) is not None:
        if time.monotonic() >= deadline:
            click.echo(f"timed out: every record is processed, but {why}", err=True)
            sys.exit(1)
        time.sleep(0.5)
    click.echo("all records processed", err=True)


def _not_ready(settings: Settings, partitions: set[int]) -> str | None:
    """Why the group's counts cannot be read in full yet, or None: the group has settled, every
    partition has an owner, and no owner is restoring (each says so on its /healthz)."""
    import urllib.request

    from kafka.errors import KafkaError

    from streams.producer import group_assignment
    from streams.tls import client_context

    try:
        state, membership = group_assignment(settings)
    except KafkaError as exc:
        return f"the worker group cannot be described ({exc})"
    if state != "Stable":
        return f"the worker group is {state or 'not formed'}, not stable"
    orphans = sorted(p for p in partitions if membership.owner_of(p) is None)
    if orphans:
        return f"partitions {orphans} have no worker"
    for url in sorted(membership.urls()):
        try:
            with urllib.request.urlopen(
                f"{url}/healthz", timeout=10, context=client_context(settings.web_tls_cert)
            ) as resp:
                status = json.load(resp).get("status")
        except (OSError, ValueError) as exc:
            return f"worker {url} does not answer ({exc})"
        if status != "ok":
            return f"worker {url} is restoring its partitions from the changelog"
    return None


if __name__ == "__main__":
    main()
