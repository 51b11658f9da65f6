"""Prometheus metrics, `/healthz` and `POST /-/reload`, served by a small asyncio HTTP server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


COUNTERS = {  # key of the live values -> (name, help); Prometheus adds `_total`
    "received": ("dsiem_events_received", "Events received from NATS"),
    "invalid": ("dsiem_events_invalid", "Events dropped as malformed or invalid"),
    "dropped": ("dsiem_events_dropped", "Events dropped because the queue was full"),
    "processed": ("dsiem_events_processed", "Events run through the engine"),
    "alarms": ("dsiem_alarms_written", "Alarm lines written"),
    "commit_retries": ("dsiem_commit_retries",
                       "Writes retried after a fault that can pass (disk full, lock)"),
}
GAUGES = {
    "queue_length": ("dsiem_queue_length", "Events waiting in the queue"),
    "backlogs": ("dsiem_backlogs", "Live backlogs"),
    "last_commit": ("dsiem_last_commit_timestamp_seconds",
                    "Unix time of the last successful commit (0: none since start)"),
    "last_reload_successful": ("dsiem_config_last_reload_successful",
                               "Whether the last config reload succeeded (1 until one fails)"),
}
RELOADS = ("dsiem_config_reloads", "Config reloads asked for (SIGHUP, POST /-/reload), by result")

# only with --intake jetstream
STREAM_COUNTERS = {
    "stream_lost": ("dsiem_stream_lost",
                    "Events the stream's limits deleted before they were processed"),
    "stream_redelivered": ("dsiem_stream_redelivered",
                           "Messages delivered again and skipped (their effects were there)"),
}
STREAM_GAUGES = {
    "stream_pending": ("dsiem_stream_pending", "Messages of the stream not processed yet"),
    "stream_lag": ("dsiem_stream_lag_seconds",
                   "Seconds since NATS stored the oldest message not processed yet"),
    "stream_sequence": ("dsiem_stream_sequence",
                        "Stream sequence of the last event whose effects are committed"),
}


class Metrics(Collector):
    """Every counter and gauge is read from the service's live values at each scrape."""

    def __init__(self, read: Callable[[], Mapping[str, float]]) -> None:
        self.read = read
        self.registry = CollectorRegistry()
        self.commit_seconds = Histogram(
            "dsiem_commit_seconds", "Latency of one database commit", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.registry.register(self)

    def describe(self) -> list[Metric]:
        return []  # nothing to read before the service runs

    def collect(self) -> Iterator[Metric]:
        values = self.read()
        for key, (name, text) in COUNTERS.items():
            yield CounterMetricFamily(name, text, value=values[key])
        for key, (name, text) in GAUGES.items():
            yield GaugeMetricFamily(name, text, value=values[key])
        for key, (name, text) in STREAM_COUNTERS.items():
            if key in values:
                yield CounterMetricFamily(name, text, value=values[key])
        for key, (name, text) in STREAM_GAUGES.items():
            if key in values:
                yield GaugeMetricFamily(name, text, value=values[key])
        reloads = CounterMetricFamily(*RELOADS, labels=["result"])
        for result in ("success", "failure"):
            reloads.add_metric([result], values[f"reloads_{result}"])
        yield reloads

    def render(self) -> bytes:
        return generate_latest(self.registry)


Reload = Callable[[str], Awaitable[tuple[int, str]]]


async def serve_metrics(metrics: Metrics, host: str, port: int, healthy,
                        reload: Reload | None = None) -> asyncio.Server:
    """GET /metrics (Prometheus text), GET /healthz (200 when `healthy()` else 503), and
    POST /-/reload: the HTTP status and message `reload` answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            method = parts[0] if parts else ""
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/metrics":
                status, body, kind = "200 OK", metrics.render(), CONTENT_TYPE_LATEST
            elif path == "/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                body, kind = (b"ok\n" if ok else b"not ready\n"), "text/plain"
            elif path == "/-/reload" and reload is not None:
                if method == "POST":
                    code, message = await reload("POST /-/reload")
                    status, body = f"{code} {HTTPStatus(code).phrase}", f"{message}\n".encode()
                else:
                    status, body = "405 Method Not Allowed", b"use POST to reload\n"
                kind = "text/plain; charset=utf-8"
            else:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
