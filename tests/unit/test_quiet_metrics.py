"""Metric exports that repeat the last one are held back, anything that moved goes at once
(stack/common/quiet_metrics.py, issue 19). The SDK's own MeterProvider and reader produce the
exports; only the OTLP exporter behind the wrapper is replaced by a recorder."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

from stack.common.quiet_metrics import QuietMetricExporter


class Recorder(MetricExporter):
    """Stands in for the OTLP exporter: keeps what it was given, fails when told to."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality={})
        self.sent: list[MetricsData] = []
        self.fail = False

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any) -> Any:
        if self.fail:
            return MetricExportResult.FAILURE
        self.sent.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        pass

    def values(self, name: str) -> list[Any]:
        last = self.sent[-1]
        return [
            dp.value if hasattr(dp, "value") else dp.count
            for rm in last.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
            for dp in m.data.data_points
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig() -> Iterator[tuple[Recorder, Clock, PeriodicExportingMetricReader, MeterProvider]]:
    recorder, clock = Recorder(), Clock()
    quiet = QuietMetricExporter(recorder, idle_export_s=60, clock=clock)
    # An infinite interval: no thread, each collect() is one export (the SDK's own test seam).
    reader = PeriodicExportingMetricReader(quiet, export_interval_millis=math.inf)
    provider = MeterProvider(metric_readers=[reader])
    yield recorder, clock, reader, provider
    provider.shutdown()


def test_an_unchanged_counter_is_sent_once_then_again_after_the_idle_interval(rig: Any) -> None:
    recorder, clock, reader, provider = rig
    jobs = provider.get_meter("t").create_counter("workshop.jobs.processed")
    jobs.add(3, {"outcome": "ok"})
    reader.collect()
    assert len(recorder.sent) == 1
    for _ in range(5):  # fifty seconds of 10 s intervals with nothing new
        clock.now += 10
        reader.collect()
    assert len(recorder.sent) == 1
    clock.now += 10  # sixty seconds since the last send: the series is reported again
    reader.collect()
    assert len(recorder.sent) == 2
    assert recorder.values("workshop.jobs.processed") == [3]


def test_a_counter_that_moved_is_sent_at_once(rig: Any) -> None:
    recorder, clock, reader, provider = rig
    jobs = provider.get_meter("t").create_counter("workshop.jobs.processed")
    jobs.add(1)
    reader.collect()
    clock.now += 10
    jobs.add(1)
    reader.collect()
    assert len(recorder.sent) == 2
    assert recorder.values("workshop.jobs.processed") == [2]
    clock.now += 10
    jobs.add(1, {"outcome": "failed"})  # a new series on the same instrument
    reader.collect()
    assert len(recorder.sent) == 3


def test_a_histogram_record_is_sent_at_once(rig: Any) -> None:
    recorder, clock, reader, provider = rig
    latency = provider.get_meter("t").create_histogram("workshop.job.duration", unit="ms")
    latency.record(12.0)
    reader.collect()
    clock.now += 10
    latency.record(12.0)  # same value, one more observation: count and sum moved
    reader.collect()
    assert len(recorder.sent) == 2
    assert recorder.values("workshop.job.duration") == [2]


def test_a_gauge_that_moves_or_goes_away_is_sent(rig: Any) -> None:
    recorder, clock, reader, provider = rig
    state = {"faults": {"slow_db": 1}}

    def observe(_options: CallbackOptions) -> list[Observation]:
        return [Observation(n, {"fault.kind": k}) for k, n in state["faults"].items()]

    meter = provider.get_meter("t")
    meter.create_observable_gauge("workshop.faults.active", [observe])
    # A service with nothing at all to report exports nothing (the SDK's rule): a counter
    # keeps this one reporting, as the worker's do.
    meter.create_counter("workshop.jobs.processed").add(1)
    reader.collect()
    clock.now += 10
    reader.collect()
    assert len(recorder.sent) == 1  # the fault is still on: nothing new to say
    state["faults"] = {"slow_db": 2}
    clock.now += 10
    reader.collect()
    assert recorder.values("workshop.faults.active") == [2]
    state["faults"] = {}  # cleared: the export that says so is not held back
    clock.now += 10
    reader.collect()
    assert len(recorder.sent) == 3


def test_a_failed_export_is_not_remembered(rig: Any) -> None:
    recorder, clock, reader, provider = rig
    jobs = provider.get_meter("t").create_counter("workshop.jobs.processed")
    jobs.add(1)
    recorder.fail = True
    reader.collect()
    recorder.fail = False
    clock.now += 10
    reader.collect()  # the same points as the failed export: they go now
    assert len(recorder.sent) == 1


def test_the_reader_sees_the_inner_exporters_temporality() -> None:
    inner = Recorder()
    inner._preferred_temporality = {int: AggregationTemporality.DELTA}  # type: ignore[dict-item]
    assert QuietMetricExporter(inner, 60)._preferred_temporality == inner._preferred_temporality
