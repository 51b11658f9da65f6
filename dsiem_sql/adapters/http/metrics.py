"""The Prometheus metrics of `serve`, read from the service's live values at each scrape
(served on /metrics by `adapters/http/server.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
SUPPRESSED = ("dsiem_events_suppressed",
              "Events a suppression kept from a directive (dsiem-sql suppress), by directive")
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

    def __init__(self, read: Callable[[], Mapping[str, float]],
                 suppressed: Callable[[], Mapping[int, int]] = dict) -> None:
        """`suppressed`: the events kept from each directive by suppressions, by id."""
        self.suppressed = suppressed
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
        suppressed = CounterMetricFamily(*SUPPRESSED, labels=["directive"])
        for directive, count in sorted(self.suppressed().items()):
            suppressed.add_metric([str(directive)], count)
        yield suppressed

    def render(self) -> bytes:
        return generate_latest(self.registry)
