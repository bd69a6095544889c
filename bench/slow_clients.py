"""Slow and many clients against one worker: does the server stay answerable?

    DW_KAFKA=... python bench/slow_clients.py [--sockets 300] [--seconds 40]

Opens ``--sockets`` connections from one address that send request headers one line every second
and never finish them (a slowloris), as an outsider who reaches the port could. Reports when the
server closed them (``DW_WEB_IDLE_TIMEOUT_S``), how many it refused (503) past
``DW_WEB_MAX_CONNECTIONS_PER_CLIENT`` or ``DW_WEB_MAX_CONNECTIONS``, and how ``/healthz`` fared
meanwhile for a well-behaved client on another address (127.0.0.2)."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import tempfile
import time
from pathlib import Path

from harness import Workers, parse, write_results

from streams.producer import ensure_topics


async def slow_client(port: int, seconds: float, t0: float) -> tuple[str, float]:
    """('closed' | 'refused' | 'held', seconds after t0)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "refused", time.monotonic() - t0
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        while time.monotonic() - t0 < seconds:
            data = b""
            try:
                data = await asyncio.wait_for(reader.read(1024), 1.0)
            except TimeoutError:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                continue
            return ("refused" if data.startswith(b"HTTP/1.1 503") else "closed"), time.monotonic() - t0
        return "held", time.monotonic() - t0
    except OSError:
        return "closed", time.monotonic() - t0
    finally:
        writer.close()


failures: list[str] = []


def probe(port: int, until: float) -> list[float]:
    """GET /healthz every half second from another source address (127.0.0.2) than the slow
    clients': seconds each took (inf: failed)."""
    took = []
    while time.monotonic() < until:
        t = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", "/healthz")
            status = conn.getresponse().status
            took.append(time.monotonic() - t if status == 200 else float("inf"))
            if status != 200:
                failures.append(f"HTTP {status}")
        except OSError as exc:
            took.append(float("inf"))
            failures.append(f"{type(exc).__name__}: {exc}"[:120])
        finally:
            conn.close()
        time.sleep(0.5)
    return took


async def run(url: str, port: int, sockets: int, seconds: float) -> dict[str, object]:
    t0 = time.monotonic()
    clients = [asyncio.create_task(slow_client(port, seconds, t0)) for _ in range(sockets)]
    health = asyncio.get_running_loop().run_in_executor(None, probe, port, t0 + seconds)
    results = await asyncio.gather(*clients)
    took = await health
    closed = [t for kind, t in results if kind == "closed"]
    return {
        "sockets": sockets,
        "closed_by_server": len(closed),
        "refused_at_once": sum(1 for kind, _ in results if kind == "refused"),
        "still_open_at_end": sum(1 for kind, _ in results if kind == "held"),
        "closed_after_s_median": round(statistics.median(closed), 2) if closed else None,
        "closed_after_s_max": round(max(closed), 2) if closed else None,
        "healthz_ms_median": round(statistics.median(took) * 1000, 1),
        "healthz_ms_max": round(max(took) * 1000, 1),
        "healthz_failed": sum(1 for t in took if t == float("inf")),
        "healthz_failures": sorted(set(failures)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parse(parser, sockets=20, seconds=3.0)
    tag = os.urandom(4).hex()
    env = {
        "DW_KAFKA": os.environ["DW_KAFKA"],
        "DW_TOPIC_PREFIX": f"slow{tag}.",
        "DW_APP_ID": f"dw-slow-{tag}",
        "DW_PARTITIONS": "2",
    }
    workers = Workers(env, 1, Path(tempfile.mkdtemp(prefix="dw-bench-slow-")), profile=False)
    ensure_topics(workers.settings)
    workers.start()
    try:
        workers.wait_settled()
        result = asyncio.run(run(workers.urls[0], workers.ports[0], args.sockets, args.seconds))
    finally:
        workers.stop()
    write_results("slow-clients", result)


if __name__ == "__main__":
    main()
