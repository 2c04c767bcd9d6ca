"""A metric exporter that does not re-send what has not changed.

The SDK's periodic reader exports every instrument's cumulative points each interval (10 s),
changed or not: between two labs the worker, the queue and the query service each encoded and
posted the same points six times a minute, and the collector decoded, enriched and wrote them
(issue 19, idle CPU). This wrapper compares an export's points with the last one sent and drops
an identical one, unless `METRIC_IDLE_EXPORT_MS` has passed since the last send: a series that
does not move is still reported, just less often.

Only the exporter is wrapped, so the reader, its interval and the OTLP exporter are the SDK's.
"Identical" is every point's value (sum, count, min and max for histograms), attributes and
start time, for every metric of every resource and scope; the point's own timestamp is left
out, since it is the one thing that changes every interval. A cumulative point that moved, a
gauge that moved, a series that appeared or went away (a fault cleared) goes at the next
interval, as it did without the wrapper.
`METRIC_IDLE_EXPORT_MS=0` sends every interval, as the SDK does (the budget bench's baseline
arm).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)


def fingerprint(data: MetricsData) -> tuple[object, ...]:
    """What an export says, minus the time it says it: equal fingerprints, same points."""
    out: list[object] = []
    for rm in data.resource_metrics:
        out.append(tuple(sorted(rm.resource.attributes.items())))
        for sm in rm.scope_metrics:
            out.append(sm.scope.name)
            for metric in sm.metrics:
                out.append(metric.name)
                for dp in metric.data.data_points:
                    attrs = tuple(sorted(dp.attributes.items())) if dp.attributes else ()
                    if isinstance(dp, NumberDataPoint):
                        out.append((attrs, dp.start_time_unix_nano, dp.value))
                    elif isinstance(dp, HistogramDataPoint):
                        point = (dp.count, dp.sum, dp.min, dp.max, tuple(dp.bucket_counts))
                        out.append((attrs, dp.start_time_unix_nano, point))
                    else:  # exponential histograms: the kit records none; never skip them
                        out.append((attrs, object()))
    return tuple(out)


class QuietMetricExporter(MetricExporter):
    """`inner` (the SDK's OTLP exporter), skipping exports identical to the last one sent
    for up to `idle_export_s` seconds."""

    def __init__(
        self,
        inner: MetricExporter,
        idle_export_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.idle_export_s = idle_export_s
        self._clock = clock
        self._last: tuple[object, ...] | None = None
        self._last_sent = float("-inf")

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        now = self._clock()
        mark = fingerprint(metrics_data)
        if mark == self._last and now - self._last_sent < self.idle_export_s:
            return MetricExportResult.SUCCESS
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is MetricExportResult.SUCCESS:
            # Only a delivered export counts: after a failure the same points go again.
            self._last, self._last_sent = mark, now
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
