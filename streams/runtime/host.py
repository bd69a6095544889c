"""Faust as the worker's host: lifecycle, signals, the web server and background tasks.

The one module that touches Faust and mode. Faust's own Kafka consumer, producer, conductor and
tables stay off (``HostOnly``): the counting loop owns the source topic (``streams.runtime.loop``),
because Faust's per-record consumer drops or skips records around seeks and resumes
(faust-streaming #175, #606; ../shared/FAUST-NOTES.md) and caps speed at about a tenth of a raw
consume loop. Faust keeps what it does well: a worker command with signal handling, an aiohttp
web server, and tasks that start and stop with the app.

- ``create_app``: the Faust app, web server on ``DW_WEB_HOST:DW_WEB_PORT``, Faust's own pages off;
- ``RuntimeService``: the counting loop and the watchdog as a mode service of that app;
- ``add_page`` / ``add_task`` / ``on_shutdown``: register a plain handler or coroutine function;
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

from streams.runtime.loop import CountingLoop
from streams.runtime.watchdog import Watchdog
from streams.settings import Settings

log = logging.getLogger(__name__)

#: a page handler: the request (aiohttp's) and the path's parameters -> an aiohttp response
Handler = Callable[..., Awaitable[Any]]


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
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
    )


def add_page(app: Any, path: str, handler: Handler, name: str, post: Handler | None = None) -> None:
    """Serve ``handler(request, **path parameters)`` at ``path`` (GET), and ``post`` (POST)."""
    from faust.web import View

    async def get(view: Any, request: Any, **params: Any) -> Any:
        return await handler(request, **params)

    methods: dict[str, Any] = {"get": get}
    if post is not None:
        post_handler = post

        async def post_method(view: Any, request: Any, **params: Any) -> Any:
            return await post_handler(request, **params)

        methods["post"] = post_method
    app.page(path)(type(name, (View,), methods))


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


class QuietWorker(Worker):
    """Faust's worker without its terminal spinner: for log levels at WARN or above the spinner
    sets the root logger to DEBUG so that it turns on every message, which makes every aiokafka
    debug call build a log record (about 10% of the worker's time)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def run_worker(app: Any, log_level: str) -> None:
    """Run the app until SIGTERM or SIGINT (Faust's worker command)."""
    QuietWorker(app, loglevel=log_level, quiet=True).execute_from_commandline()
