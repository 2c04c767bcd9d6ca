"""The kit's OTLP span encoder (stack/common/otlp_wire.py) against the contract it replaces: the
OpenTelemetry SDK's encoder. Decoded with the official opentelemetry-proto classes, its bytes
must be the SDK's, for every kind of span the kit makes; and its exporter must deliver them as
the SDK's does, refusals included."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from stack.common import otlp_wire
from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import resource_attributes, span_exporter


def _provider(limits: SpanLimits | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    resource = Resource.create(resource_attributes(ServiceName.QUEUE, Settings(), "1.0.0"))
    provider = TracerProvider(resource=resource, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def _kit_spans() -> list[ReadableSpan]:
    """Spans shaped like the kit's: a remote parent, server/client/producer/consumer/internal
    kinds, every attribute type, events (fault.injected, an exception), a link, an error
    status, trace state, two scopes."""
    provider, memory = _provider()
    http = provider.get_tracer(
        "fastapi", "0.165.0", schema_url="https://opentelemetry.io/schemas/1.26.0"
    )
    stack = provider.get_tracer("stack")
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("cx", "w1"), ("vendor", "x")]),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with http.start_as_current_span(
        "POST /jobs",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "http.route": "/jobs",
            "http.response.status_code": 202,
            "server.port": 8013,
            "synthetic_request": True,
            "workshop.attendee": "alice",
            "ratio": 0.25,
            "negative": -7,
            "big": 2**62,
            "tags": ["a", "b"],
            "codes": [200, 503],
            "flags": [True, False],
            "empty": "",
            "unicode": "déjà vu ✓",
            "long": "x" * 300,
        },
    ) as server:
        server.add_event("fault.injected", {"fault.name": "latency", "fault.delay_ms": 250})
        server.add_event("")
        with stack.start_as_current_span("send stream:jobs", kind=SpanKind.PRODUCER) as producer:
            producer.set_attribute("messaging.system", "redis")
        with stack.start_as_current_span("HSET EXPIRE XADD", kind=SpanKind.CLIENT):
            pass
    consumer = stack.start_span(
        "process stream:jobs",
        kind=SpanKind.CONSUMER,
        links=[Link(producer.get_span_context(), {"messaging.operation": "receive"})],
    )
    try:
        raise RuntimeError("storage-service answered 503")
    except RuntimeError as exc:
        consumer.record_exception(exc)
        consumer.set_status(Status(StatusCode.ERROR, "storage-service answered 503"))
    consumer.end()
    with stack.start_as_current_span("render", kind=SpanKind.INTERNAL) as ok:
        ok.set_status(Status(StatusCode.OK))
    return list(memory.get_finished_spans())


def test_bytes_equal_the_sdk_encoders() -> None:
    spans = _kit_spans()
    ours = otlp_wire.encode_spans(spans)
    theirs = sdk_encode(spans)
    assert ExportTraceServiceRequest.FromString(ours) == theirs
    # Field order is the same too, so even the bytes are the SDK's.
    assert ours == theirs.SerializePartialToString()
    decoded = ExportTraceServiceRequest.FromString(ours)
    scopes = decoded.resource_spans[0].scope_spans
    assert sorted(s.scope.name for s in scopes) == ["fastapi", "stack"]
    assert sum(len(s.spans) for s in scopes) == 5


def test_dropped_counts_are_encoded() -> None:
    provider, memory = _provider(SpanLimits(max_span_attributes=2, max_events=1, max_links=1))
    tracer = provider.get_tracer("stack")
    context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span(
        "busy", attributes={"a": 1, "b": 2, "c": 3}, links=[Link(context), Link(context)]
    ) as span:
        span.add_event("one")
        span.add_event("two")
    spans = list(memory.get_finished_spans())
    decoded = ExportTraceServiceRequest.FromString(otlp_wire.encode_spans(spans))
    assert decoded == sdk_encode(spans)
    encoded = decoded.resource_spans[0].scope_spans[0].spans[0]
    assert (encoded.dropped_attributes_count, encoded.dropped_events_count) == (1, 1)
    assert encoded.dropped_links_count == 1


def test_cached_pairs_keep_their_type() -> None:
    """True == 1 in Python: the attribute cache must not hand one's bytes to the other."""
    provider, memory = _provider()
    tracer = provider.get_tracer("stack")
    for value in (True, 1, "1", 1.0):
        with tracer.start_as_current_span("s", attributes={"v": value}):
            pass
    spans = list(memory.get_finished_spans())
    decoded = ExportTraceServiceRequest.FromString(otlp_wire.encode_spans(spans))
    assert decoded == sdk_encode(spans)
    values = [s.attributes[0].value for s in decoded.resource_spans[0].scope_spans[0].spans]
    assert [v.WhichOneof("value") for v in values] == [
        "bool_value",
        "int_value",
        "string_value",
        "double_value",
    ]


def test_a_cached_pair_keeps_its_place() -> None:
    """query-service's CLIENT span to the LLM carries http.response.status_code=429, and so
    does its `retry` event (lab 03 asks for that status): a pair cached from the span must not
    land in the event under the span's field number, where a decoder drops it."""
    provider, memory = _provider()
    tracer = provider.get_tracer("stack")
    pair = {"http.response.status_code": 429}
    with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=pair) as client:
        pass
    with tracer.start_as_current_span("chat", links=[Link(client.get_span_context(), pair)]) as s:
        s.add_event("retry", {"retry.attempt": 1, **pair})
    spans = list(memory.get_finished_spans())
    decoded = ExportTraceServiceRequest.FromString(otlp_wire.encode_spans(spans))
    assert decoded == sdk_encode(spans)
    chat = decoded.resource_spans[0].scope_spans[0].spans[1]
    assert [kv.key for kv in chat.events[0].attributes] == [
        "retry.attempt",
        "http.response.status_code",
    ]
    assert chat.links[0].attributes[0].value.int_value == 429


def test_the_attribute_cache_stays_bounded() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("stack")
    for i in range(otlp_wire._PAIR_CACHE_MAX + 50):
        with tracer.start_as_current_span("s", attributes={"job.id": f"job-{i}"}):
            pass
    spans = list(memory.get_finished_spans())
    assert ExportTraceServiceRequest.FromString(otlp_wire.encode_spans(spans)) == sdk_encode(spans)
    assert len(otlp_wire._pairs) <= otlp_wire._PAIR_CACHE_MAX


def test_values_outside_span_attributes_match_the_sdk() -> None:
    """Log bodies and nested values can be bytes, maps and None; spans cannot, but the encoder
    takes what OTLP's AnyValue takes."""
    from opentelemetry.exporter.otlp.proto.common._internal import _encode_value

    for value in (None, b"\x00\xff", {"k": [1, {"n": None}]}, [], -(2**63), 3.5):
        ours = otlp_wire._any_value(value)
        assert type(_encode_value(value)).FromString(ours) == _encode_value(value), value


class _Sink(BaseHTTPRequestHandler):
    status = 200
    bodies: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.path, self.headers["Content-Type"], body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, type[_Sink]]]:
    handler = type("Sink", (_Sink,), {"bodies": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", handler
    server.shutdown()
    server.server_close()


def test_exporter_posts_protobuf_to_the_traces_endpoint(sink) -> None:
    url, handler = sink
    spans = _kit_spans()
    exporter = otlp_wire.WireSpanExporter(endpoint=url, timeout=2)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [(path, content_type, body)] = handler.bodies
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert ExportTraceServiceRequest.FromString(body) == sdk_encode(spans)
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE  # after shutdown, as the SDK's


def test_exporter_reports_a_refused_batch(sink) -> None:
    """A 400 is not retried (OTLP/HTTP spec): the batch fails at once, as with the SDK's."""
    url, handler = sink
    handler.status = 400
    exporter = otlp_wire.WireSpanExporter(endpoint=url, timeout=2)
    assert exporter.export(_kit_spans()) is SpanExportResult.FAILURE
    assert len(handler.bodies) == 1


def test_the_setting_chooses_the_encoder(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.invalid:4318")
    assert type(span_exporter(Settings())) is otlp_wire.WireSpanExporter
    monkeypatch.setenv("OTLP_SPAN_ENCODER", "sdk")
    assert type(span_exporter(Settings())) is OTLPSpanExporter


def test_exports_reach_the_collector_past_a_proxy_in_the_environment(sink, monkeypatch) -> None:
    """An instructor's shell with HTTP_PROXY and no NO_PROXY for the collector: the services'
    OTLP exports still go straight to it, not to the proxy (which does not resolve here)."""
    url, handler = sink
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url.removesuffix("/v1/traces"))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(Settings())))
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    provider.shutdown()
    assert [path for path, _type, _body in handler.bodies] == ["/v1/traces"]
