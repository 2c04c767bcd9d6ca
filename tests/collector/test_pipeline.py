"""Run the real collector on loopback and push OTLP/HTTP from the Python SDK through it.

1. production + offline overlay: all signals, span metrics, host metrics land in files and
   health_check answers.
2. production path without Coralogix: the coralogix exporters point at a second collector
   (a stand-in for Coralogix ingress) that records what arrives.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from labs.telemetry import load_logs, load_metrics, load_spans, traces
from tests.collector.conftest import CONFIG, LOOPBACK, OFFLINE, SINK, TO_SINK, base_env

HOSTMETRICS = {
    "system.cpu.time",
    "system.memory.usage",
    "system.filesystem.usage",
    "system.network.io",
}


def poll(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except AssertionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what or check.__name__} (last={last!r})")


def resource(service: str, **extra: str) -> Resource:
    return Resource.create({"service.name": service, "service.namespace": "dataprime", **extra})


def send_telemetry(http_port: int, run_id: str) -> dict[str, str]:
    """Spans of one 3-service trace (+ one error trace), a counter, two log records."""
    base = f"http://127.0.0.1:{http_port}"
    providers = {
        # gateway sets its own cx.* like the real services; the others rely on the collector.
        "api-gateway": resource(
            "api-gateway", **{"cx.application.name": "team-app", "cx.subsystem.name": "gw"}
        ),
        "query-service": resource("query-service"),
        "validation-service": resource("validation-service"),
    }
    tps = {}
    for name, res in providers.items():
        tp = TracerProvider(resource=res)
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        tps[name] = tp
    attendee = {"workshop.attendee": f"alice-{run_id}"}
    gw = tps["api-gateway"].get_tracer("test")
    with gw.start_as_current_span(
        "POST /api/queries",
        kind=trace.SpanKind.SERVER,
        attributes={**attendee, "http.request.method": "POST", "http.response.status_code": 202},
    ) as root:
        ctx = trace.set_span_in_context(root)
        with (
            tps["query-service"]
            .get_tracer("test")
            .start_as_current_span(
                "translate", context=ctx, kind=trace.SpanKind.SERVER, attributes=attendee
            )
        ):
            time.sleep(0.01)
        with (
            tps["validation-service"]
            .get_tracer("test")
            .start_as_current_span(
                "validate", context=ctx, kind=trace.SpanKind.SERVER, attributes=attendee
            ) as v
        ):
            v.set_status(Status(StatusCode.ERROR, "bad query"))
        ok_trace = format(root.get_span_context().trace_id, "032x")
    with gw.start_as_current_span(
        "GET /api/history",
        kind=trace.SpanKind.SERVER,
        attributes={"workshop.attendee": f"bob-{run_id}", "http.request.method": "GET"},
    ) as other:
        other_trace = format(other.get_span_context().trace_id, "032x")
    for tp in tps.values():
        tp.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=60_000
    )
    mp = MeterProvider(resource=providers["query-service"], metric_readers=[reader])
    mp.get_meter("test").create_counter("workshop.test.requests").add(3, {"run": run_id})
    mp.shutdown()

    lp = LoggerProvider(resource=providers["query-service"])
    lp.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"))
    )
    lp.get_logger("test").emit(
        body=f"collector test log {run_id}",
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        timestamp=time.time_ns(),
        attributes={"run": run_id},
    )
    lp.shutdown()
    return {"trace": ok_trace, "other": other_trace}


def metric_names(directory: Path) -> set[str]:
    return {m.name for m in load_metrics(directory)}


# --------------------------------------------------------------------------- 1. offline


def test_offline_pipeline_writes_all_signals(start_collector, tmp_path: Path) -> None:
    tel = tmp_path / "telemetry"
    ports = {"OTLP_GRPC_PORT": 24310, "OTLP_HTTP_PORT": 24311, "COLLECTOR_HEALTH_PORT": 24312}
    env = base_env(
        OTEL_COLLECTOR_HOST="127.0.0.1",
        TELEMETRY_DIR=str(tel),
        **{k: str(v) for k, v in ports.items()},
    )
    start_collector([CONFIG, OFFLINE, LOOPBACK], env, ports["COLLECTOR_HEALTH_PORT"], "offline")

    with urllib.request.urlopen(
        f"http://127.0.0.1:{ports['COLLECTOR_HEALTH_PORT']}/", timeout=2
    ) as r:
        assert r.status == 200

    ids = send_telemetry(ports["OTLP_HTTP_PORT"], "offline")

    def spans_arrived():
        spans = load_spans(tel)
        return spans if {ids["trace"], ids["other"]} <= {s.trace_id for s in spans} else None

    spans = poll(spans_arrived, what="spans in traces.jsonl")
    mine = [s for s in spans if s.trace_id == ids["trace"]]
    assert {s.service for s in mine} == {"api-gateway", "query-service", "validation-service"}
    by_service = {s.service: s for s in mine}
    # resource processor: insert keeps the service's own value, fills the gap otherwise
    assert by_service["api-gateway"].resource["cx.application.name"] == "team-app"
    assert by_service["query-service"].resource["cx.application.name"] == "dataprime-workshop"
    assert "host.name" in by_service["query-service"].resource  # resource_detection system

    summaries = {t.trace_id: t for t in traces(spans, limit=None)}
    t = summaries[ids["trace"]]
    assert t.attendee == "alice-offline" and t.error and t.span_count == 3
    assert t.root_name == "POST /api/queries" and t.root_service == "api-gateway"
    assert [x.trace_id for x in traces(spans, attendee="bob-offline")] == [ids["other"]]

    def spanmetrics_arrived():
        # Cumulative series start with a zero point (spanmetrics at v0.158): keep the latest.
        found = {}
        for m in load_metrics(tel):
            if m.name in ("calls", "duration"):
                for dp in m.data_points:
                    if (dp.value or dp.count or 0) > 0:
                        found[(m.name, m.service)] = (m, dp)
        want = {(n, s) for n in ("calls", "duration") for s in by_service}
        return found if want <= set(found) else None

    found = poll(spanmetrics_arrived, what="span metrics calls/duration per service")
    calls, calls_dp = found[("calls", "query-service")]
    duration, _ = found[("duration", "validation-service")]
    assert calls.type == "sum" and calls_dp.value >= 1
    assert calls_dp.attributes["span.name"] == "translate"
    assert duration.type == "histogram" and duration.unit == "ms"
    gw_calls = found[("calls", "api-gateway")][1]
    assert gw_calls.attributes.get("http.request.method") in ("POST", "GET")

    poll(lambda: metric_names(tel) >= HOSTMETRICS, what=f"host metrics {HOSTMETRICS}")
    assert "workshop.test.requests" in metric_names(tel)
    host = next(m for m in load_metrics(tel) if m.name == "system.memory.usage")
    assert host.resource.get("cx.application.name") == "dataprime-workshop"
    assert "host.name" in host.resource

    def log_arrived():
        return [rec for rec in load_logs(tel) if rec.body == "collector test log offline"]

    (rec,) = poll(log_arrived, what="log record")
    assert rec.severity.startswith("WARN") and rec.service == "query-service"
    assert (tel / "entities.jsonl").exists()


# --------------------------------------------------------------------------- 2. production


def test_production_pipeline_through_coralogix_exporter(start_collector, tmp_path: Path) -> None:
    sink_dir = tmp_path / "sink"
    sink_env = base_env(SINK_GRPC_PORT="24330", SINK_HEALTH_PORT="24331", SINK_DIR=str(sink_dir))
    start_collector([SINK], sink_env, 24331, "sink")

    ports = {"OTLP_GRPC_PORT": 24320, "OTLP_HTTP_PORT": 24321, "COLLECTOR_HEALTH_PORT": 24322}
    env = base_env(
        OTEL_COLLECTOR_HOST="127.0.0.1",
        CX_PRIVATE_KEY="dummy-test-key",
        SINK_GRPC_PORT="24330",
        **{k: str(v) for k, v in ports.items()},
    )
    start_collector([CONFIG, TO_SINK, LOOPBACK], env, ports["COLLECTOR_HEALTH_PORT"], "production")
    ids = send_telemetry(ports["OTLP_HTTP_PORT"], "prod")

    def spans_arrived():
        spans = [s for s in load_spans(sink_dir) if s.trace_id == ids["trace"]]
        return spans if len(spans) == 3 else None

    spans = {s.service: s for s in poll(spans_arrived, what="spans at the sink")}
    for s in spans.values():
        assert s.resource["sink.authorization"] == "Bearer dummy-test-key"
        assert s.attributes["workshop.attendee"] == "alice-prod"
    gw = spans["api-gateway"].resource
    assert (gw["cx.application.name"], gw["cx.subsystem.name"]) == ("team-app", "gw")
    q = spans["query-service"].resource
    # collector's resource processor filled the app name; the exporter mapped service.name
    # to the subsystem (subsystem_name_attributes: [cx.subsystem.name, service.name]).
    assert (q["cx.application.name"], q["cx.subsystem.name"]) == (
        "dataprime-workshop",
        "query-service",
    )

    def metrics_arrived():
        ms = load_metrics(sink_dir)
        names = {m.name for m in ms}
        return (
            ms if {"calls", "duration", "workshop.test.requests"} | HOSTMETRICS <= names else None
        )

    ms = poll(metrics_arrived, what="span, app and host metrics at the sink")
    for m in ms:
        assert m.resource["sink.authorization"] == "Bearer dummy-test-key"
        assert m.resource.get("cx.application.name"), m.name
        assert m.resource.get("cx.subsystem.name"), m.name
    calls_q = [m for m in ms if m.name == "calls" and m.service == "query-service"]
    assert calls_q and calls_q[0].resource["cx.subsystem.name"] == "query-service"
    host = next(m for m in ms if m.name == "system.cpu.time")
    # no service.name on host metrics: subsystem falls back to subsystem_name (CX_SUBSYSTEM_NAME)
    assert host.resource["cx.application.name"] == "dataprime-workshop"
    assert host.resource["cx.subsystem.name"] == "collector"

    def logs_arrived():
        logs = load_logs(sink_dir)
        app = [r for r in logs if r.body == "collector test log prod"]
        entities = [r for r in logs if r.resource.get("sink.ingress")]
        return (app, entities) if app and entities else None

    app_logs, entity_logs = poll(logs_arrived, what="app log + host entity event at the sink")
    rec = app_logs[0]
    assert rec.resource["cx.application.name"] == "dataprime-workshop"
    assert rec.resource["cx.subsystem.name"] == "query-service"
    assert rec.resource["sink.authorization"] == "Bearer dummy-test-key"
    assert "sink.ingress" not in rec.resource
    ent = entity_logs[0]
    assert ent.resource["sink.ingress"] == "metadata-as-otlp-logs/v1"
    assert (ent.resource["cx.application.name"], ent.resource["cx.subsystem.name"]) == (
        "resource",
        "catalog",
    )
    assert ent.attributes.get("otel.entity.type") == "host"


@pytest.fixture(autouse=True)
def _no_global_otel_state():
    """The SDK providers above are local; make sure no test installs a global provider."""
    before = trace.get_tracer_provider()
    yield
    assert trace.get_tracer_provider() is before
