"""Span and log batch processors whose worker sleeps while there is nothing to export.

The OpenTelemetry SDK's batch worker wakes every schedule delay (spans 5 s, logs 1 s:
OTEL_BSP_SCHEDULE_DELAY, OTEL_BLRP_SCHEDULE_DELAY) whether or not anything is queued. Idle,
that is 1.2 wakeups a second in each of nine services, about a quarter of an idle service's
CPU (issue 19). Here the worker waits without a timeout while the queue is empty, and the
first record arms the schedule delay: a record still leaves within the delay, a full batch at
once, and shutdown and force_flush export what is queued, as the SDK's do.

The processors are the SDK's own (`BatchSpanProcessor`, `BatchLogRecordProcessor`, so their
settings and metrics are the SDK's); only the worker loop of the `BatchProcessor` they wrap is
replaced. BATCH_WORKER=sdk keeps the SDK's (the budget bench's baseline arm).
"""

from __future__ import annotations

from typing import Any, TypeVar

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk._shared_internal import BatchExportStrategy, BatchProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

T = TypeVar("T")


class QuietBatchProcessor(BatchProcessor[T]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._idle = False  # read by the worker thread the base class starts
        super().__init__(*args, **kwargs)

    def emit(self, data: T) -> None:
        super().emit(data)
        # The worker saw an empty queue and sleeps until told: the first record tells it.
        if self._idle and not self._worker_awaken.is_set():
            self._worker_awaken.set()

    def worker(self) -> None:
        while not self._shutdown:
            if not self._queue:
                # _idle goes up before the second look, so a record that lands after the look
                # finds it up and wakes us (emit); one that lands before, the look sees.
                self._idle = True
                if not self._queue:
                    self._worker_awaken.wait()
                self._idle = False
                if self._shutdown:
                    break
                # Not cleared here: a batch that filled meanwhile set it too, and the wait
                # below returns at once to export it; otherwise it is cleared below and the
                # records wait out the delay.
            interrupted = self._worker_awaken.wait(self._schedule_delay)
            if self._shutdown:
                break
            self._export(
                BatchExportStrategy.EXPORT_WHILE_BATCH_EXCEEDS_THRESHOLD
                if interrupted
                else BatchExportStrategy.EXPORT_AT_LEAST_ONE_BATCH
            )
            self._worker_awaken.clear()
        self._export(BatchExportStrategy.EXPORT_ALL)


def _quiet(sdk: BatchProcessor[Any]) -> QuietBatchProcessor[Any]:
    """The same processor (exporter, sizes, delay, metrics) with the quiet worker. The SDK's
    worker is stopped first; its queue is still empty, so it exports nothing and its exporter
    stays open."""
    sdk._shutdown = True
    sdk._worker_awaken.set()
    sdk._worker_thread.join()
    return QuietBatchProcessor(
        sdk._exporter,
        sdk._schedule_delay_millis,
        sdk._max_export_batch_size,
        sdk._export_timeout_millis,
        sdk._max_queue_size,
        sdk._exporting,
        sdk._metrics,
    )


class QuietSpanProcessor(BatchSpanProcessor):
    def __init__(self, exporter: Any) -> None:
        super().__init__(exporter)
        self._batch_processor = _quiet(self._batch_processor)


class QuietLogProcessor(BatchLogRecordProcessor):
    def __init__(self, exporter: Any) -> None:
        super().__init__(exporter)
        self._batch_processor = _quiet(self._batch_processor)
