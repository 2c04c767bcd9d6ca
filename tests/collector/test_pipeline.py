"""Run the real collector on loopback and push OTLP/HTTP from the Python SDK through it.

1. production + offline overlay: all signals, the four APM span-metric families (calls/duration,
   compact.*, db.*, db_compact.*), utilization and per-service process metrics, host entity
   events with otel.entity.id/host.id land in files and health_check answers.
2. production path without Coralogix: the coralogix exporters point at a second collector
   (a stand-in for Coralogix ingress) that records what arrives — and the local copy is kept.
3. host.name/host.id are the machine's own and stable across collector restarts.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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
from labs.telemetry.reader import attributes
from tests.collector.conftest import CONFIG, LOOPBACK, OFFLINE, SINK, TO_SINK, base_env, port

HOSTMETRICS = {
    "system.cpu.time",
    "system.memory.usage",
    "system.filesystem.usage",
    "system.network.io",
}
# Infrastructure Explorer's CPU % and memory % (hostMetrics preset).
UTILIZATION = {"system.cpu.utilization", "system.memory.utilization"}
SPANMETRICS = {
    "calls",
    "duration",
    "compact.calls",
    "compact.duration",
    "db.calls",
    "db.duration",
    "db_compact.calls",
    "db_compact.duration",
}
# Host attributes Coralogix's hostEntityEvents preset sends (resourcedetection/entity); host.mac
# and the cpu.* ones depend on the machine, these exist everywhere the system detector runs.
ENTITY_HOST_ATTRS = {"host.id", "host.name", "os.type", "os.description", "host.ip"}
VERSION = "1.2.3"


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
    return Resource.create(
        {
            "service.name": service,
            "service.namespace": "dataprime",
            "service.version": VERSION,
            **extra,
        }
    )


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
        "storage-service": resource("storage-service"),
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
        # A DB CLIENT span like the storage service's (DESIGN: db.system, db.namespace, ...).
        with (
            tps["storage-service"]
            .get_tracer("test")
            .start_as_current_span(
                "SELECT feedback.results",
                context=ctx,
                kind=trace.SpanKind.CLIENT,
                attributes={
                    **attendee,
                    "db.system": "sqlite",
                    "db.namespace": "feedback",
                    "db.operation.name": "SELECT",
                    "db.collection.name": "results",
                    "db.query.text": "SELECT * FROM results WHERE id = ?",
                },
            )
        ):
            time.sleep(0.002)
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


def load_entities(directory: Path, name: str = "entities.jsonl") -> list[dict[str, Any]]:
    """Host entity events the collector wrote: [{'resource': {...}, 'attributes': {...}}]."""
    path = directory / name
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        for rl in doc.get("resourceLogs") or []:
            res = attributes((rl.get("resource") or {}).get("attributes"))
            for sl in rl.get("scopeLogs") or []:
                for rec in sl.get("logRecords") or []:
                    out.append({"resource": res, "attributes": attributes(rec.get("attributes"))})
    return out


def latest_points(directory: Path, names: set[str]) -> dict[tuple[str, str], tuple[Any, Any]]:
    """(metric name, service) -> (metric, a non-zero data point), latest export wins.
    Cumulative series start with a zero point (spanmetrics at v0.158): skip those."""
    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    for m in load_metrics(directory):
        if m.name in names:
            for dp in m.data_points:
                if (dp.value or dp.count or 0) > 0:
                    found[(m.name, m.service)] = (m, dp)
    return found


def assert_span_metric_families(found: dict[tuple[str, str], tuple[Any, Any]]) -> None:
    """What Coralogix APM reads (spanMetrics preset), checked on the exported OTLP."""
    calls, calls_dp = found[("calls", "query-service")]
    assert calls.type == "sum" and calls_dp.value >= 1
    assert calls_dp.attributes["span.name"] == "translate"
    # service.version dimension (serviceVersion preset) and resource attributes kept
    # (add_resource_attributes); no per-start collector.instance.id anywhere.
    assert calls_dp.attributes["service.version"] == VERSION
    assert calls.resource["host.name"] and calls.resource["service.version"] == VERSION
    for (name, _svc), (_m, dp) in found.items():
        assert "collector.instance.id" not in dp.attributes, name
    duration, _ = found[("duration", "validation-service")]
    assert duration.type == "histogram" and duration.unit == "ms"
    gw_calls = found[("calls", "api-gateway")][1]
    assert gw_calls.attributes.get("http.request.method") in ("POST", "GET")

    # compact: no span.name, a resource cut down to the preset's keys (+ the kit's cx.* labels)
    compact, cdp = found[("compact.calls", "query-service")]
    assert "span.name" not in cdp.attributes and cdp.attributes["span.kind"]
    assert compact.resource["host.name"]
    # (sink.* is what the loopback stand-in for Coralogix records about the request)
    assert {k for k in compact.resource if not k.startswith("sink.")} <= {
        "service.name",
        "k8s.cluster.name",
        "host.name",
        "cx.application.name",
        "cx.subsystem.name",
        "service.namespace",
    }, compact.resource
    assert found[("compact.duration", "validation-service")][0].type == "histogram"

    # db: only the DB span's service, with the preset's DB dimensions
    db_services = {svc for (name, svc) in found if name.startswith("db.")}
    assert db_services == {"storage-service"}, db_services
    db, ddp = found[("db.calls", "storage-service")]
    assert {
        k: ddp.attributes.get(k)
        for k in ("db.namespace", "db.operation.name", "db.collection.name", "db.system")
    } == {
        "db.namespace": "feedback",
        "db.operation.name": "SELECT",
        "db.collection.name": "results",
        "db.system": "sqlite",
    }
    assert found[("db.duration", "storage-service")][0].unit == "ms"

    # db_compact: namespace + system only; span.name and span.kind excluded
    dc, dcdp = found[("db_compact.calls", "storage-service")]
    assert (
        dcdp.attributes["db.namespace"] == "feedback" and dcdp.attributes["db.system"] == "sqlite"
    )
    assert "span.name" not in dcdp.attributes and "span.kind" not in dcdp.attributes
    assert "db.operation.name" not in dcdp.attributes
    assert {svc for (name, svc) in found if name.startswith("db_compact.")} == {"storage-service"}


def assert_entity_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """hostEntityEvents preset: otel.entity.id = {host.id}, host attributes on the record,
    an empty resource."""
    assert events, "no host entity events"
    ev = events[-1]
    a = ev["attributes"]
    assert a.get("otel.entity.type") == "host"
    assert isinstance(a.get("otel.entity.id"), dict), a
    assert a["otel.entity.id"].get("host.id"), a["otel.entity.id"]
    missing = ENTITY_HOST_ATTRS - set(a)
    assert not missing, f"entity event lacks {missing}: {sorted(a)}"
    assert a["otel.entity.id"]["host.id"] == a["host.id"]
    return a


def start_rss_target() -> subprocess.Popen:
    """A python process whose command line looks like a kit service (`-m stack.run <name>`):
    the process scraper + transform/process_service must report its RSS as that service."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "-m", "stack.run", "rss-target"]
    )


# --------------------------------------------------------------------------- 1. offline


def test_offline_pipeline_writes_all_signals(start_collector, tmp_path: Path, request) -> None:
    tel = tmp_path / "telemetry"
    ports = {
        "OTLP_GRPC_PORT": port(10),
        "OTLP_HTTP_PORT": port(11),
        "COLLECTOR_HEALTH_PORT": port(12),
    }
    env = base_env(
        OTEL_COLLECTOR_HOST="127.0.0.1",
        TELEMETRY_DIR=str(tel),
        **{k: str(v) for k, v in ports.items()},
    )
    target = start_rss_target()
    request.addfinalizer(target.kill)
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
    assert {s.service for s in mine} == {
        "api-gateway",
        "query-service",
        "validation-service",
        "storage-service",
    }
    by_service = {s.service: s for s in mine}
    # resource processor: insert keeps the service's own value, fills the gap otherwise
    assert by_service["api-gateway"].resource["cx.application.name"] == "team-app"
    assert by_service["query-service"].resource["cx.application.name"] == "dataprime-workshop"
    assert "host.name" in by_service["query-service"].resource  # resource_detection system

    summaries = {t.trace_id: t for t in traces(spans, limit=None)}
    t = summaries[ids["trace"]]
    assert t.attendee == "alice-offline" and t.error and t.span_count == 4
    assert t.root_name == "POST /api/queries" and t.root_service == "api-gateway"
    assert [x.trace_id for x in traces(spans, attendee="bob-offline")] == [ids["other"]]

    want = {
        (n, s)
        for n in ("calls", "duration", "compact.calls", "compact.duration")
        for s in by_service
    } | {(n, "storage-service") for n in SPANMETRICS if n.startswith("db")}

    def families_arrived():
        found = latest_points(tel, SPANMETRICS)
        return found if want <= set(found) else None

    found = poll(families_arrived, what="the four span-metric families per service")
    assert_span_metric_families(found)

    poll(
        lambda: metric_names(tel) >= HOSTMETRICS | UTILIZATION,
        what=f"host metrics {HOSTMETRICS | UTILIZATION}",
    )
    assert "workshop.test.requests" in metric_names(tel)
    host = next(m for m in load_metrics(tel) if m.name == "system.memory.usage")
    assert host.resource.get("cx.application.name") == "dataprime-workshop"
    assert host.resource["host.name"] == socket.gethostname()
    util = [
        dp.value
        for m in load_metrics(tel)
        if m.name == "system.memory.utilization"
        for dp in m.data_points
    ]
    assert util and all(0 < v <= 1 for v in util), util[:5]

    # RSS per kit service (memory_leak fault docs): process.memory.usage named by service,
    # and no other python process (this test runner, kernels) exported.
    def rss_arrived():
        return [
            m
            for m in load_metrics(tel)
            if m.name == "process.memory.usage" and m.service == "rss-target"
        ]

    rss = poll(rss_arrived, what="process.memory.usage of the `-m stack.run rss-target` process")
    assert rss[0].resource["process.pid"] == target.pid
    assert rss[0].data_points[0].value > 1_000_000  # bytes of RSS
    assert "process.command_line" not in rss[0].resource
    for m in load_metrics(tel):
        if "process.pid" in m.resource:
            assert m.service, f"unnamed process metric exported: {m.name} {m.resource}"

    ev = assert_entity_events(poll(lambda: load_entities(tel), what="host entity events"))
    assert ev["host.name"] == socket.gethostname() == spans[0].resource["host.name"]
    assert ev["host.id"] == spans[0].resource["host.id"] == host.resource["host.id"]
    assert not load_entities(tel)[-1]["resource"], "entity event resource must be empty"

    def log_arrived():
        return [rec for rec in load_logs(tel) if rec.body == "collector test log offline"]

    (rec,) = poll(log_arrived, what="log record")
    assert rec.severity.startswith("WARN") and rec.service == "query-service"


# --------------------------------------------------------------------------- 2. production


def test_production_pipeline_through_coralogix_exporter(start_collector, tmp_path: Path) -> None:
    sink_dir = tmp_path / "sink"
    local = tmp_path / "local-copy"
    sink_port, sink_health = port(30), port(31)
    sink_env = base_env(
        SINK_GRPC_PORT=str(sink_port), SINK_HEALTH_PORT=str(sink_health), SINK_DIR=str(sink_dir)
    )
    start_collector([SINK], sink_env, sink_health, "sink")

    ports = {
        "OTLP_GRPC_PORT": port(20),
        "OTLP_HTTP_PORT": port(21),
        "COLLECTOR_HEALTH_PORT": port(22),
    }
    env = base_env(
        OTEL_COLLECTOR_HOST="127.0.0.1",
        CX_PRIVATE_KEY="dummy-test-key",
        SINK_GRPC_PORT=str(sink_port),
        TELEMETRY_DIR=str(local),
        **{k: str(v) for k, v in ports.items()},
    )
    start_collector([CONFIG, TO_SINK, LOOPBACK], env, ports["COLLECTOR_HEALTH_PORT"], "production")
    ids = send_telemetry(ports["OTLP_HTTP_PORT"], "prod")

    def spans_arrived():
        spans = [s for s in load_spans(sink_dir) if s.trace_id == ids["trace"]]
        return spans if len(spans) == 4 else None

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
        want = SPANMETRICS | UTILIZATION | HOSTMETRICS | {"workshop.test.requests"}
        return ms if want <= names else None

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
    ent = entity_logs[-1]
    assert ent.resource["sink.ingress"] == "metadata-as-otlp-logs/v1"
    assert (ent.resource["cx.application.name"], ent.resource["cx.subsystem.name"]) == (
        "resource",
        "catalog",
    )
    # what the exporter sent is the preset's shape: the resource holds only what the exporter
    # and the sink added, the host is in the record's attributes with otel.entity.id.
    assert set(ent.resource) <= {
        "cx.application.name",
        "cx.subsystem.name",
        "sink.ingress",
        "sink.authorization",
    }, ent.resource
    a = assert_entity_events([{"resource": ent.resource, "attributes": ent.attributes}])
    assert a["host.name"] == socket.gethostname()

    # the span-metric families as Coralogix receives them, filed under the right labels
    want = {
        (n, s) for n in ("calls", "duration", "compact.calls", "compact.duration") for s in spans
    } | {(n, "storage-service") for n in SPANMETRICS if n.startswith("db")}

    def families_at_sink():
        found = latest_points(sink_dir, SPANMETRICS)
        return found if want <= set(found) else None

    found = poll(families_at_sink, what="the four span-metric families at the sink")
    assert_span_metric_families(found)
    labels = {"api-gateway": ("team-app", "gw")}  # the gateway sets its own cx.* above
    for (name, svc), (m, _dp) in found.items():
        app, sub = labels.get(svc, ("dataprime-workshop", svc))
        assert (m.resource["cx.application.name"], m.resource["cx.subsystem.name"]) == (
            app,
            sub,
        ), (name, m.resource)

    # online mode keeps the local copy of every signal (workshop traces, offline checks)
    poll(
        lambda: {s.trace_id for s in load_spans(local)} >= {ids["trace"]},
        what="local copy of the spans in online mode",
    )
    poll(
        lambda: metric_names(local) >= {"calls", "system.cpu.utilization"},
        what="local copy of the metrics in online mode",
    )
    poll(
        lambda: any(r.body == "collector test log prod" for r in load_logs(local)),
        what="local copy of the logs in online mode",
    )
    assert_entity_events(poll(lambda: load_entities(local), what="local copy of entity events"))


def test_host_identity_is_the_machine_and_stable(start_collector, tmp_path: Path) -> None:
    """host.name/host.id come from this machine (env, system detectors natively) and do not
    change when the collector restarts — Infrastructure Explorer keeps one host."""
    seen = []
    for run in range(2):
        tel = tmp_path / f"run{run}"
        ports = {
            "OTLP_GRPC_PORT": port(40),
            "OTLP_HTTP_PORT": port(41),
            "COLLECTOR_HEALTH_PORT": port(42),
        }
        env = base_env(
            OTEL_COLLECTOR_HOST="127.0.0.1",
            TELEMETRY_DIR=str(tel),
            **{k: str(v) for k, v in ports.items()},
        )
        proc = start_collector(
            [CONFIG, OFFLINE, LOOPBACK], env, ports["COLLECTOR_HEALTH_PORT"], f"identity{run}"
        )
        ev = assert_entity_events(poll(lambda tel=tel: load_entities(tel), what="entity event"))
        host = poll(
            lambda tel=tel: next(
                (m for m in load_metrics(tel) if m.name == "system.cpu.utilization"), None
            ),
            what="system.cpu.utilization",
        )
        assert host.resource["host.name"] == ev["host.name"]
        assert host.resource["host.id"] == ev["host.id"]
        seen.append((ev["host.name"], ev["host.id"]))
        proc.terminate()
        proc.wait(timeout=15)
    assert seen[0] == seen[1], seen
    assert seen[0][0] == socket.gethostname()
    machine_id = Path("/etc/machine-id")
    if machine_id.exists() and machine_id.read_text().strip():
        assert seen[0][1] in (machine_id.read_text().strip(), _dmi_uuid()), seen


def _dmi_uuid() -> str | None:
    try:
        return Path("/sys/class/dmi/id/product_uuid").read_text().strip().lower()
    except OSError:
        return None


@pytest.fixture(autouse=True)
def _no_global_otel_state():
    """The SDK providers above are local; make sure no test installs a global provider."""
    before = trace.get_tracer_provider()
    yield
    assert trace.get_tracer_provider() is before
