"""Telemetry leaves the box: the collector's Coralogix exporters deliver to a local TLS OTLP sink
(tests/docker/compose.test.yml, `ingress.sink.invalid`), and what arrives is what Coralogix's
APM and Infrastructure views need."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.docker.conftest import ComposeStack, ask_and_wait

EIGHT = {
    "api-gateway", "query-service", "validation-service", "queue-service",
    "processing-service", "storage-service", "queue-worker", "external-api-service",
}  # fmt: skip
CONTAINER_ID = re.compile(r"^[0-9a-f]{12}([0-9a-f]{52})?$")


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return out


def _attrs(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        a["key"]: next(iter(a.get("value", {}).values()), None) for a in obj.get("attributes", [])
    }


def _wait(predicate, timeout: float = 90):
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(2)
    return result


def test_one_trace_spans_all_eight_services(stack: ComposeStack) -> None:
    with stack.https() as client:
        assert ask_and_wait(client, "slowest endpoints of the payment service")["status"] == "done"

    def complete_trace() -> set[str] | None:
        services: dict[str, set[str]] = defaultdict(set)
        for rec in _records(stack.sink_out / "traces.jsonl"):
            for rs in rec.get("resourceSpans", []):
                name = _attrs(rs["resource"]).get("service.name")
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        services[span["traceId"]].add(name)
        full = [s for s in services.values() if s >= EIGHT]
        return full[0] if full else None

    found = _wait(complete_trace)
    assert found and found >= EIGHT, "no trace with all eight services reached the sink"


def test_host_metrics_and_entity_events_carry_the_docker_hosts_name(
    stack: ComposeStack,
) -> None:
    def host_metrics() -> list[dict[str, Any]]:
        hits = []
        for rec in _records(stack.sink_out / "metrics.jsonl"):
            for rm in rec.get("resourceMetrics", []):
                names = [
                    m["name"] for sm in rm.get("scopeMetrics", []) for m in sm.get("metrics", [])
                ]
                if any(n.startswith("system.") for n in names):
                    hits.append(_attrs(rm["resource"]))
        return hits

    def entity_events() -> list[dict[str, Any]]:
        hits = []
        for rec in _records(stack.sink_out / "logs.jsonl"):
            for rl in rec.get("resourceLogs", []):
                for sl in rl.get("scopeLogs", []):
                    for lr in sl.get("logRecords", []):
                        a = _attrs(lr)
                        if "otel.entity.event.type" in a:
                            hits.append({**_attrs(rl["resource"]), **a})
        return hits

    metrics = _wait(host_metrics)
    assert metrics, "no system.* host metrics reached the sink"
    events = _wait(entity_events)
    assert events, "no host entity events reached the sink"
    for resource in metrics:
        assert resource.get("host.name") == stack.docker_host_name, resource
    for event in events:
        name = event.get("host.name")
        assert name == stack.docker_host_name or (
            name is None and event.get("otel.entity.type") == "host"
        ), event
        assert not CONTAINER_ID.match(str(name or "")), event


def test_no_signal_names_a_container_id_as_its_host(stack: ComposeStack) -> None:
    bad = set()
    for path in ("traces.jsonl", "metrics.jsonl", "logs.jsonl"):
        for rec in _records(stack.sink_out / path):
            for key in ("resourceSpans", "resourceMetrics", "resourceLogs"):
                for r in rec.get(key, []):
                    name = str(_attrs(r["resource"]).get("host.name", ""))
                    if CONTAINER_ID.match(name):
                        bad.add(name)
    assert not bad, f"host.name is a container id: {sorted(bad)[:5]}"
