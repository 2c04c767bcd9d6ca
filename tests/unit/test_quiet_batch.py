"""The quiet batch workers (stack/common/quiet_batch.py): no wakeup while nothing is queued,
and still every record exported — within the delay, a full batch at once, the rest at flush
and shutdown. The SDK's own worker is measured beside it, so the idle test can fail."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._shared_internal import BatchProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from stack.common.quiet_batch import QuietBatchProcessor, QuietSpanProcessor
from tests.helpers import eventually
from workshop.bench_wakeup import task_wakeups


class Recorder:
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.shutdowns = 0
        self._lock = threading.Lock()

    def export(self, batch: list[Any]) -> SpanExportResult:
        with self._lock:
            self.items.extend(batch)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shutdowns += 1


class NoMetrics:
    def register_queue_size(self, _callback: Callable[[], int]) -> None: ...

    def finish_items(self, _count: int) -> None: ...

    def drop_items(self, _count: int, _reason: str | None = None) -> None: ...


def make(cls: type[BatchProcessor[Any]], exporter: Recorder, *, delay_ms: float, batch: int = 512):
    return cls(exporter, delay_ms, batch, 30_000, 2048, "Test", NoMetrics())


def wakeups(thread: threading.Thread) -> int:
    return task_wakeups(f"/proc/self/task/{thread.native_id}")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_an_idle_quiet_worker_does_not_wake_where_the_sdks_wakes_every_delay() -> None:
    sdk, quiet = (
        make(BatchProcessor, Recorder(), delay_ms=20),
        make(QuietBatchProcessor, Recorder(), delay_ms=20),
    )
    try:
        time.sleep(0.1)
        before = {p: wakeups(p._worker_thread) for p in (sdk, quiet)}
        time.sleep(1.0)
        woke = {p: wakeups(p._worker_thread) - n for p, n in before.items()}
        assert woke[sdk] >= 10  # the SDK's: every 20 ms
        assert woke[quiet] <= 1
    finally:
        sdk.shutdown()
        quiet.shutdown()


def test_a_record_after_a_long_idle_leaves_within_the_delay() -> None:
    out = Recorder()
    p = make(QuietBatchProcessor, out, delay_ms=100)
    try:
        time.sleep(0.3)  # the worker is asleep without a timeout
        p.emit("a")
        eventually(lambda: out.items == ["a"], timeout=3.0, interval=0.01, what="a exported")
        time.sleep(0.3)
        p.emit("b")  # and again after the queue emptied
        eventually(lambda: out.items == ["a", "b"], timeout=3.0, interval=0.01, what="b exported")
    finally:
        p.shutdown()


def test_a_full_batch_leaves_at_once_not_after_the_delay() -> None:
    out = Recorder()
    p = make(QuietBatchProcessor, out, delay_ms=60_000, batch=4)
    try:
        for item in "abcd":
            p.emit(item)
        eventually(
            lambda: len(out.items) == 4, timeout=3.0, interval=0.01, what="the batch exported"
        )
    finally:
        p.shutdown()


def test_flush_and_shutdown_export_what_is_queued_and_close_the_exporter_once() -> None:
    out = Recorder()
    p = make(QuietBatchProcessor, out, delay_ms=60_000)
    p.emit("a")
    p.force_flush()
    assert out.items == ["a"]
    p.emit("b")
    p.shutdown()
    assert out.items == ["a", "b"]
    assert out.shutdowns == 1
    assert not p._worker_thread.is_alive()


def test_records_from_many_threads_racing_the_idle_worker_all_leave() -> None:
    """No record is stranded in the queue while the worker sleeps without a timeout: every
    batch is exported by the worker alone (no flush), emitted in bursts with pauses that let
    the worker go idle between them."""
    out = Recorder()
    p = make(QuietBatchProcessor, out, delay_ms=5)
    per_thread, threads = 150, 6

    def emit_bursts(n: int) -> None:
        rnd = random.Random(n)
        for i in range(per_thread):
            p.emit((n, i))
            if rnd.random() < 0.2:
                time.sleep(rnd.uniform(0, 0.02))

    workers = [threading.Thread(target=emit_bursts, args=(n,)) for n in range(threads)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        eventually(
            lambda: len(out.items) == per_thread * threads,
            timeout=5.0,
            interval=0.01,
            what="every record exported (none stranded in the queue)",
        )
        assert len(set(out.items)) == per_thread * threads
    finally:
        p.shutdown()


def test_the_span_processor_exports_through_one_quiet_worker() -> None:
    out = Recorder()
    provider = TracerProvider()
    processor = QuietSpanProcessor(out)
    provider.add_span_processor(processor)
    try:
        with provider.get_tracer("t").start_as_current_span("work"):
            pass
        processor.force_flush()
        assert [s.name for s in out.items] == ["work"]
        workers = [t for t in threading.enumerate() if t.name == "OtelBatchSpanRecordProcessor"]
        assert workers == [processor._batch_processor._worker_thread]  # the SDK's has stopped
    finally:
        provider.shutdown()
    assert out.shutdowns == 1
