"""The kit's shorter span path (stack/common/lean_trace.py) against the contract it replaces:
the OpenTelemetry SDK's tracer. The same calls through both must export the same spans — the
same OTLP bytes once ids are drawn from one sequence and clocks are set aside — for every kind
of span and every rule the kit relies on: sampling after a parent, attribute cleaning, limits
and drops, events, links, exceptions, status, refusals after the end and the current span."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from stack.common import lean_trace, otlp_wire
from stack.common.lean_trace import LeanSpan, LeanTracer, LeanTracerProvider
from stack.common.settings import Settings
from stack.common.telemetry import BAGGAGE_ATTRIBUTES, tracer_provider_class


class _Counting(IdGenerator):
    """Ids from a counter, so two providers fed the same calls draw the same ids."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return 0xABC0000000000000 + next(self._next)

    def is_trace_id_random(self) -> bool:
        return True


def _provider(
    cls: type[TracerProvider], **kwargs: object
) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = cls(
        resource=Resource.create({"service.name": "queue-service"}),
        id_generator=_Counting(),
        **kwargs,  # type: ignore[arg-type]
    )
    provider.add_span_processor(BaggageSpanProcessor(lambda k: k in BAGGAGE_ATTRIBUTES))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


REMOTE = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("cx", "w1")]),
)


class Opaque:
    """A value of no attribute type, with no __str__ of its own: the SDK drops it to None."""

    __slots__ = ()


def _calls(provider: TracerProvider) -> None:
    """Every span operation the kit makes, and the edge cases of each."""
    http = provider.get_tracer("fastapi", "0.165.0", schema_url="https://opentelemetry.io/s")
    stack = provider.get_tracer("stack.queue")
    parent = trace.set_span_in_context(trace.NonRecordingSpan(REMOTE))
    parent = baggage.set_baggage("workshop.attendee", "alice", parent)
    parent = baggage.set_baggage("other", "ignored", parent)
    token = context.attach(parent)  # as FastAPI attaches the extracted context
    try:
        _request_calls(http, stack, parent)
    finally:
        context.detach(token)
    _root_calls(stack)


def _request_calls(http: trace.Tracer, stack: trace.Tracer, parent: context.Context) -> None:
    # FastAPI's path: start_span, use_span without ending, set_attributes, set_status, end.
    server = http.start_span(
        "POST",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"url.scheme": "http", "http.request.method": "POST", "server.port": 8013},
    )
    with trace.use_span(server, end_on_exit=False):
        with stack.start_as_current_span(
            "send stream:jobs",
            kind=SpanKind.PRODUCER,
            attributes={
                "tags": ["a", "b"],
                "codes": (200, 503),
                "ratio": 0.25,
                "flag": False,
                "nothing": None,
                "opaque": Opaque(),
                "mapping": {"k": 1},
                "bytes": b"\x00\x01",
            },
        ) as producer:
            producer.set_attribute("messaging.system", "redis")
            producer.set_attribute("tags", ["c"])  # re-set: moves to the end
            producer.set_attribute("", "dropped")
            producer.set_attribute(7, "dropped")  # type: ignore[arg-type]
            producer.set_attributes({"a": 1, "": 2, "list": [1, 2]})
            producer.add_event("fault.injected", {"fault.name": "latency", "delay_ms": 250})
            producer.add_link(REMOTE, {"link.kind": "follows"})
            producer.update_name("send stream:jobs2")
        with pytest.raises(ValueError), stack.start_as_current_span("failing") as failing:
            failing.set_status(StatusCode.OK)  # OK wins over the exception's ERROR
            raise ValueError("first")
        with pytest.raises(KeyError), stack.start_as_current_span("error", kind=SpanKind.CLIENT):
            raise KeyError("missing")
        with (
            pytest.raises(RuntimeError),
            stack.start_as_current_span(
                "quiet", record_exception=False, set_status_on_exception=False
            ),
        ):
            raise RuntimeError("not recorded")
        with stack.start_as_current_span("kept open", end_on_exit=False) as kept:
            pass
        kept.set_status(Status(StatusCode.ERROR, "by hand"))
        kept.set_status(StatusCode.UNSET)  # ignored
        kept.end()
        kept.end()  # warned, ignored
        kept.set_attribute("late", 1)  # refused after the end
        kept.add_event("late")
        kept.set_status(StatusCode.OK)
        with stack.start_as_current_span(
            "consumer",
            kind=SpanKind.CONSUMER,
            links=[
                Link(REMOTE, {"messaging.operation": "process"}),
                Link(trace.INVALID_SPAN_CONTEXT),
            ],
        ) as consumer:
            consumer.record_exception(ZeroDivisionError("recorded by hand"), {"extra": "yes"})
    server.set_attributes(
        {"http.route": "/jobs", "http.response.status_code": 500, "url.scheme": "http"}
    )
    server.set_status(StatusCode.ERROR)
    server.end()


def _root_calls(stack: trace.Tracer) -> None:
    # A root span, a span under a parent that was not sampled, and a span with an explicit
    # start and end.
    with stack.start_as_current_span("root", kind=SpanKind.INTERNAL):
        pass
    unsampled = SpanContext(REMOTE.trace_id, 5, is_remote=True, trace_flags=TraceFlags(0))
    with stack.start_as_current_span(
        "unsampled", context=trace.set_span_in_context(trace.NonRecordingSpan(unsampled))
    ) as dropped:
        assert not dropped.is_recording()
        dropped.set_attribute("ignored", True)
    timed = stack.start_span("timed", start_time=1_000, attributes={"x": "y"})
    timed.end(end_time=2_000)


def _request(spans: tuple[ReadableSpan, ...], keep_times: bool) -> ExportTraceServiceRequest:
    """The SDK's encoding, decoded; event and span times zeroed unless they were given."""
    request = ExportTraceServiceRequest.FromString(encode_spans(spans).SerializeToString())
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                if not (keep_times and span.name == "timed"):
                    span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    event.time_unix_nano = 0
                for event in span.events:
                    for attribute in event.attributes:
                        if attribute.key == "exception.stacktrace":
                            # Tracebacks name the line that raised: the test's own, identical.
                            attribute.value.string_value = attribute.value.string_value.split("\n")[
                                0
                            ]
    return request


def _both(
    calls: Callable[[TracerProvider], None], **kwargs: object
) -> tuple[ExportTraceServiceRequest, ExportTraceServiceRequest, tuple[ReadableSpan, ...]]:
    sdk, sdk_memory = _provider(TracerProvider, **kwargs)
    lean, lean_memory = _provider(LeanTracerProvider, **kwargs)
    calls(sdk)
    calls(lean)
    lean_spans = lean_memory.get_finished_spans()
    return (
        _request(sdk_memory.get_finished_spans(), True),
        _request(lean_spans, True),
        lean_spans,
    )


def test_every_span_operation_exports_the_sdks_bytes() -> None:
    sdk, lean, spans = _both(_calls)
    assert lean == sdk
    assert len(spans) == 9  # the unsampled span is not exported by either
    assert all(isinstance(span, LeanSpan) for span in spans)
    by_name = {span.name: span for span in spans}
    # What the comparison covers, checked on the lean side so it cannot compare two empties.
    server = by_name["POST"]
    assert server.parent == REMOTE and server.get_span_context().trace_state == REMOTE.trace_state
    assert server.attributes["workshop.attendee"] == "alice"
    assert "other" not in server.attributes
    assert server.status.status_code is StatusCode.ERROR
    producer = by_name["send stream:jobs2"]
    assert list(producer.attributes) == [
        *("codes", "ratio", "flag", "nothing", "opaque", "mapping", "bytes"),
        *("workshop.attendee", "messaging.system", "tags", "a", "list"),
    ]
    assert producer.attributes["tags"] == ("c",)
    assert producer.attributes["opaque"] is None and producer.dropped_attributes == 3
    assert [e.name for e in producer.events] == ["fault.injected"] and len(producer.links) == 1
    assert by_name["failing"].status.status_code is StatusCode.OK
    assert by_name["failing"].events[0].attributes["exception.type"] == "ValueError"
    assert by_name["error"].status.description == "KeyError: 'missing'"
    assert not by_name["quiet"].events and by_name["quiet"].status.status_code is StatusCode.UNSET
    assert by_name["kept open"].status.description == "by hand"
    assert "late" not in by_name["kept open"].attributes
    assert len(by_name["consumer"].links) == 1  # the invalid link is dropped
    assert by_name["root"].parent is None
    assert (by_name["timed"].start_time, by_name["timed"].end_time) == (1_000, 2_000)


def test_kit_encoder_reads_lean_spans_as_sdk_spans() -> None:
    """The kit's own encoder (stack/common/otlp_wire.py) gives the lean spans the bytes the
    SDK's encoder gives them."""
    lean, memory = _provider(LeanTracerProvider)
    _calls(lean)
    spans = memory.get_finished_spans()
    assert otlp_wire.encode_spans(spans) == encode_spans(spans).SerializeToString()


def test_limits_drop_as_the_sdk_does() -> None:
    limits = SpanLimits(
        max_span_attributes=3, max_span_attribute_length=4, max_events=1, max_links=1
    )

    def calls(provider: TracerProvider) -> None:
        tracer = provider.get_tracer("stack.limits")
        with tracer.start_as_current_span(
            "limited", attributes={"a": "long value", "b": ["abcdef"]}, links=[Link(REMOTE)] * 2
        ) as span:
            for i in range(5):
                span.set_attribute(f"k{i}", "truncated?")
            span.add_event("one")
            span.add_event("two")
            span.add_link(REMOTE)
        with tracer.start_as_current_span("none kept") as span:
            span.set_attributes({"x": 1, "y": 2})

    sdk, lean, spans = _both(calls, span_limits=limits)
    assert lean == sdk
    limited = next(s for s in spans if s.name == "limited")
    assert limited.dropped_attributes == 4 and limited.dropped_events == 1
    assert limited.dropped_links == 2
    assert all(len(v) <= 4 for v in limited.attributes.values() if isinstance(v, str))
    # No attribute at all: the SDK drops every one.
    sdk_none, lean_none, _ = _both(calls, span_limits=SpanLimits(max_span_attributes=0))
    assert lean_none == sdk_none


def test_a_sampler_other_than_the_default_takes_the_sdks_path() -> None:
    """The short path decides as parentbased_always_on; any other sampler is asked, by the
    SDK's own start_span."""
    provider, memory = _provider(LeanTracerProvider, sampler=sampling.ALWAYS_OFF)
    tracer = provider.get_tracer("stack.sampled")
    assert isinstance(tracer, LeanTracer) and not tracer._lean
    with tracer.start_as_current_span("never") as span:
        assert not span.is_recording()
    assert memory.get_finished_spans() == ()
    ratio, _ = _provider(LeanTracerProvider, sampler=sampling.ParentBasedTraceIdRatio(0.5))
    assert not ratio.get_tracer("x")._lean  # type: ignore[attr-defined]
    default, _ = _provider(LeanTracerProvider)
    assert default.get_tracer("x")._lean  # type: ignore[attr-defined]


def test_the_provider_keeps_and_updates_its_lean_tracers() -> None:
    """One tracer per scope, the provider's own: what the provider changes later (the
    resource it re-detects in a forked child) reaches the spans."""
    provider, memory = _provider(LeanTracerProvider)
    tracer = provider.get_tracer("stack.kept")
    assert provider.get_tracer("stack.kept") is tracer and type(tracer) is LeanTracer
    provider._update_resource(Resource.create({"service.name": "forked"}))
    with tracer.start_as_current_span("after the fork"):
        pass
    assert memory.get_finished_spans()[0].resource.attributes["service.name"] == "forked"


def test_the_current_span_is_restored_after_every_exit() -> None:
    provider, _ = _provider(LeanTracerProvider)
    tracer = provider.get_tracer("stack.context")
    before = trace.get_current_span()
    with tracer.start_as_current_span("outer") as outer:
        assert trace.get_current_span() is outer
        with pytest.raises(ValueError), tracer.start_as_current_span("inner") as inner:
            assert trace.get_current_span() is inner
            assert inner.parent == outer.get_span_context()
            raise ValueError
        assert trace.get_current_span() is outer
    assert trace.get_current_span() is before
    assert context.get_current() is not None


def test_a_span_used_after_its_end_warns_and_stays_unchanged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, memory = _provider(LeanTracerProvider)
    span = provider.get_tracer("stack.late").start_span("done", attributes={"kept": 1})
    span.end()
    with caplog.at_level(logging.WARNING):
        span.set_attribute("late", 2)
        span.set_attributes({"late": 2})
        span.end()
    exported = memory.get_finished_spans()[0]
    assert dict(exported.attributes) == {"kept": 1}
    assert "Setting attribute on ended span." in caplog.text
    assert "Calling end() on an ended span." in caplog.text


def test_a_span_ended_before_it_started_is_refused() -> None:
    provider, _ = _provider(LeanTracerProvider)
    tracer = provider.get_tracer("stack.unstarted")
    span = tracer.start_span("x")
    span._start_time = None  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="not started"):
        span.end()


def test_span_path_setting_picks_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracer_provider_class(Settings()) is LeanTracerProvider
    monkeypatch.setenv("SPAN_PATH", "sdk")
    assert tracer_provider_class(Settings()) is TracerProvider
    monkeypatch.setenv("SPAN_PATH", "fast")
    with pytest.raises(ValueError, match="SPAN_PATH"):
        Settings()
    assert lean_trace.LeanTracerProvider.__mro__[1] is TracerProvider
