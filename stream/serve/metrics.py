"""``GET /metrics``: the engine's counters read at scrape time, in Prometheus' text format.

Nothing is counted twice: every value comes from the same counters the final summary reads.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..multi import MultiStream
from ..multi.streams import STATES


class EngineCollector:
    """Per stream: frames in/out, drops, reconnects, a latency histogram, queue depths and
    state; for the device: busy seconds, recent busy share and the stream count."""

    def __init__(self, engine: MultiStream) -> None:
        self.engine = engine

    def collect(self):
        statuses = self.engine.statuses()
        counters = {
            "frames_in": ("Frames read from the stream's source.", "frames_in"),
            "frames_out": ("Frames processed and handed to the stream's outputs.", "frames_out"),
            "dropped": ("Frames dropped to keep a live stream's latency bounded.", "dropped"),
            "reconnects": ("Times the stream's source was connected again after an outage.", "reconnects"),
        }
        for metric, (doc, key) in counters.items():
            family = CounterMetricFamily(f"densestream_stream_{metric}", doc, labels=["stream"])
            for status in statuses:
                family.add_metric([status["name"]], status[key])
            yield family
        queue = GaugeMetricFamily("densestream_stream_queue_depth", "Frames waiting per stream.",
                                  labels=["stream", "queue"])
        state = GaugeMetricFamily("densestream_stream_state", "1 for the stream's current state, else 0.",
                                  labels=["stream", "state"])
        fps = GaugeMetricFamily("densestream_stream_fps", "Recent output frames per second.", labels=["stream"])
        for status in statuses:
            queue.add_metric([status["name"], "device"], status["queued"])
            queue.add_metric([status["name"], "output"], status["output_queued"])
            for name in STATES:
                state.add_metric([status["name"], name], int(status["state"] == name))
            fps.add_metric([status["name"]], status["fps"])
        yield from (queue, state, fps)
        latency = HistogramMetricFamily("densestream_stream_latency_seconds",
                                        "Capture-to-output latency of each processed frame.",
                                        labels=["stream"])
        for name, (bounds, cumulative, total) in self.engine.histograms().items():
            buckets = [(f"{bound:g}", count) for bound, count in zip(bounds, cumulative)]
            buckets.append(("+Inf", cumulative[-1]))
            latency.add_metric([name], buckets, total)
        yield latency
        busy = CounterMetricFamily("densestream_device_busy_seconds", "Seconds the device stage spent on batches.")
        busy.add_metric([], self.engine.device_seconds)
        yield busy
        share = GaugeMetricFamily("densestream_device_busy_ratio", "Busy share of the device stage, last 10 s.")
        share.add_metric([], self.engine.busy_share())
        yield share
        count = GaugeMetricFamily("densestream_streams", "Streams being served.")
        count.add_metric([], len(statuses))
        yield count


def metrics_registry(engine: MultiStream) -> CollectorRegistry:
    """A registry holding only the engine's metrics (not the process-wide default one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
