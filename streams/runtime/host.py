"""Faust as the worker's host: lifecycle, signals, the web server and background tasks.

The one module that touches Faust and mode. Faust's own Kafka consumer, producer, conductor and
tables stay off (``HostOnly``): the counting loop owns the source topic (``streams.runtime.loop``),
because Faust's per-record consumer drops or skips records around seeks and resumes
(faust-streaming #175, #606; ../shared/FAUST-NOTES.md) and caps speed at about a tenth of a raw
consume loop. Faust keeps what it does well: a worker command with signal handling, and tasks
that start and stop with the app. Its web server is off: the worker's own (``streams.http.server``)
runs as a service of the app, with the protections Faust's lacks (security headers, a bound on
connections, slow requests timed out) and none of Faust's own pages.

- ``create_app``: the Faust app, Faust's consumer, producer, tables and web server off;
- ``RuntimeService``: the counting loop and the watchdog as a mode service of that app;
- ``WebService``: the HTTP server as a mode service of that app;
- ``add_task`` / ``on_shutdown``: register a plain coroutine function;
- ``QuietWorker``: Faust's worker without its terminal spinner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import mode
from faust.app.base import BootStrategy
from faust.worker import Worker

from streams.http.server import WebServer
from streams.logs import RepeatFilter
from streams.runtime.loop import CountingLoop
from streams.runtime.watchdog import Watchdog
from streams.settings import Settings

log = logging.getLogger(__name__)


class HostOnly(BootStrategy):
    """Start the web server, tasks and services; no Faust consumer, producer or tables."""

    enable_kafka = False


class HostApp(faust.App):
    BootStrategy = HostOnly


def create_app(settings: Settings) -> Any:
    return HostApp(
        settings.app_id,
        broker=[f"kafka://{hp}" for hp in settings.kafka.split(",")],
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
    )


def add_task(app: Any, task: Callable[[], Awaitable[None]], name: str) -> None:
    """Run ``task()`` once the app has started; it is cancelled when the app stops."""

    async def run() -> None:
        await task()

    run.__name__ = name
    app.task(run)


def on_shutdown(app: Any, hook: Callable[[], Awaitable[None]]) -> None:
    """Await ``hook()`` before the app shuts down."""

    async def before_shutdown(sender: Any, **kwargs: Any) -> None:
        await hook()

    app.on_before_shutdown.connect(before_shutdown, weak=False)


class RuntimeService(mode.Service):
    """The counting loop and its watchdog, started and stopped with the app.

    On stop, the loop finishes its batch and checkpoints (``CountingLoop.stop``) before mode
    cancels the tasks."""

    def __init__(self, loop: CountingLoop, watchdog: Watchdog, **kwargs: Any) -> None:
        self.counting = loop
        self.watchdog = watchdog
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.counting.start()

    async def on_started(self) -> None:
        self.add_future(self.counting.run())
        self.add_future(self.watchdog.run())

    async def on_stop(self) -> None:
        await self.counting.stop()


class WebService(mode.Service):
    """The worker's HTTP server, started and stopped with the app."""

    def __init__(self, server: WebServer, **kwargs: Any) -> None:
        self.server = server
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.server.start()

    async def on_stop(self) -> None:
        await self.server.stop()


class QuietWorker(Worker):
    """Faust's worker without its terminal spinner: for log levels at WARN or above the spinner
    sets the root logger to DEBUG so that it turns on every message, which makes every aiokafka
    debug call build a log record (about 10% of the worker's time). Lines the Kafka clients repeat
    (a broker that is away) are written once per interval with a count (``streams.logs``)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        repeats = RepeatFilter()  # the Kafka clients' repeated lines: once per interval, counted
        for handler in logger.handlers:
            handler.addFilter(repeats)


def run_worker(app: Any, log_level: str) -> None:
    """Run the app until SIGTERM or SIGINT (Faust's worker command)."""
    QuietWorker(app, loglevel=log_level, quiet=True).execute_from_commandline()
