"""`workshop doctor --online` against a local fake of Coralogix (OTLP ingest + the DataPrime
query API + the Metrics API), following the published contracts, failures included: a signal
that never arrives, nothing delivered (refused Send-Your-Data key), a refused query key, an
unreachable API, missing keys."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from workshop import doctor

API_KEY = "cxup_DOCTORQUERYKEY123"
SEND_KEY = "cxtp_DOCTORSENDKEY456"


class FakeCoralogix:
    def __init__(self) -> None:
        self.ingested: dict[str, list[bytes]] = {"traces": [], "logs": [], "metrics": []}
        self.drop: set[str] = set()  # signals ingest accepts but never stores
        self.hosts: set[str] = set()  # hosts with system.cpu.utilization
        self.queries: list[str] = []
        self.url = ""

    def seen(self, signal: str, marker: str) -> bool:
        return any(marker.encode() in body for body in self.ingested[signal])


def _handler(fake: FakeCoralogix):
    class H(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if self.headers.get("authorization") != f"Bearer {API_KEY}":
                self._send(401, b'{"message":"unauthorized"}', "application/json")
                return False
            return True

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            path = urlparse(self.path).path
            if path in ("/v1/traces", "/v1/logs", "/v1/metrics"):
                signal = path.rsplit("/", 1)[1]
                if signal not in fake.drop:
                    fake.ingested[signal].append(body)
                self._send(200, b"", "application/x-protobuf")
                return
            if path == "/api/v1/dataprime/query":
                if not self._authorized():
                    return
                query = json.loads(body)["query"]
                fake.queries.append(query)
                m = re.fullmatch(r"source (spans|logs) \| wildfind '([^']+)' \| limit 1", query)
                if not m:
                    err = {"error": {"queryError": {"message": f"cannot compile {query!r}"}}}
                    self._send(200, (json.dumps(err) + "\n").encode(), "application/x-ndjson")
                    return
                signal = {"spans": "traces", "logs": "logs"}[m.group(1)]
                rows = [{"userData": json.dumps({"marker": m.group(2)})}]
                lines = [
                    {"queryId": {"queryId": "q-1"}},
                    {"result": {"results": rows if fake.seen(signal, m.group(2)) else []}},
                    {"statistics": {"status": "COMPLETED"}},
                ]
                text = "".join(json.dumps(x) + "\n" for x in lines)
                self._send(200, text.encode(), "application/x-ndjson")
                return
            self._send(404, b"{}", "application/json")

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/metrics/api/v1/query":
                self._send(404, b"{}", "application/json")
                return
            if not self._authorized():
                return
            promql = parse_qs(url.query)["query"][0]
            fake.queries.append(promql)
            result = []
            if m := re.search(r'marker="([^"]+)"', promql):
                if fake.seen("metrics", m.group(1)):
                    result = [{"metric": {"marker": m.group(1)}, "value": [0, "1"]}]
            elif (
                m := re.search(r'system_cpu_utilization\{host_name="([^"]+)"\}', promql)
            ) and m.group(1) in fake.hosts:
                result = [{"metric": {"host_name": m.group(1)}, "value": [0, "0.2"]}]
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
            self._send(200, json.dumps(body).encode(), "application/json")

        def log_message(self, *_a):
            pass

    return H


@pytest.fixture()
def fake():
    f = FakeCoralogix()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(f))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    f.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield f
    server.shutdown()


def _entities(tel: Path, host: str = "vm-1", host_id: str = "id-1") -> None:
    kv = lambda k, v: {"key": k, "value": {"stringValue": v}}  # noqa: E731
    rec = {
        "attributes": [
            kv("otel.entity.type", "host"),
            {
                "key": "otel.entity.id",
                "value": {"kvlistValue": {"values": [kv("host.id", host_id)]}},
            },
            kv("host.name", host),
            kv("host.id", host_id),
        ]
    }
    line = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [rec]}]}]}
    tel.mkdir(parents=True, exist_ok=True)
    (tel / "entities.jsonl").write_text(json.dumps(line) + "\n")


@pytest.fixture()
def env(fake: FakeCoralogix, tmp_path: Path) -> dict[str, str]:
    tel = tmp_path / "telemetry"
    _entities(tel)
    fake.hosts.add("vm-1")
    return {
        "CX_PRIVATE_KEY": SEND_KEY,
        "CX_API_KEY": API_KEY,
        "CX_DOMAIN": "eu2.coralogix.com",
        "DATAPRIME_API_URL": fake.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": fake.url,
        "TELEMETRY_DIR": str(tel),
        "WORKSHOP_DATA_DIR": str(tmp_path / "data"),
        "COLLECTOR_LOG": str(tmp_path / "collector.log"),
    }


def run(env: dict[str, str], timeout: float = 1.5) -> doctor.Report:
    return doctor.run_online(env, timeout=timeout, poll=0.05)


def test_every_signal_arrives(fake, env):
    report = run(env, timeout=10)
    assert report.ok, report
    assert {n for n, c in report.checks.items() if c.ok} >= {
        "config",
        "collector",
        "host entity",
        "span",
        "log",
        "metric",
        "host metrics",
        "query API",
    }
    assert fake.seen("traces", report.marker) and fake.seen("metrics", report.marker)
    assert report.cause == ""


def test_a_signal_that_never_arrives_is_named(fake, env):
    fake.drop.add("metrics")
    report = run(env)
    assert report.failed() == ["metric"]
    assert report.checks["span"].ok and report.checks["log"].ok
    assert "not visible after" in report.checks["metric"].detail
    assert "metric did not arrive while the others did" in report.cause


def test_nothing_delivered_points_at_the_send_key_from_the_collector_log(fake, env):
    fake.drop.update({"traces", "logs", "metrics"})
    Path(env["COLLECTOR_LOG"]).write_text(
        '2026-12-01T10:00:00Z error exporterhelper: Exporting failed {"exporter": "coralogix",'
        ' "error": "rpc error: code = Unauthenticated desc = unauthorized"}\n'
    )
    report = run(env)
    assert set(report.failed()) == {"span", "log", "metric"}
    assert "CX_PRIVATE_KEY" in report.cause and "query side works" in report.cause
    assert SEND_KEY not in report.cause and API_KEY not in json.dumps(report.__dict__, default=str)


def test_nothing_delivered_without_a_log_names_domain_key_and_egress(fake, env):
    fake.drop.update({"traces", "logs", "metrics"})
    report = run(env)
    assert "ingress.eu2.coralogix.com:443" in report.cause
    assert "egress" in report.cause and "CX_PRIVATE_KEY" in report.cause


def test_refused_query_key(fake, env):
    env["CX_API_KEY"] = "wrong-key"
    report = run(env)
    api = report.checks["query API"]
    assert not api.ok and "refused" in api.detail and "DataQuerying" in api.detail
    assert not report.ok and "wrong-key" not in report.cause


def test_unreachable_query_api_says_domain_or_egress(env):
    env["DATAPRIME_API_URL"] = "http://127.0.0.1:9"
    report = run(env)
    assert "cannot reach" in report.checks["query API"].detail
    assert "egress" in report.cause and "CX_DOMAIN" in report.cause


def test_missing_host_and_entity_events(fake, env, tmp_path):
    fake.hosts.clear()
    (Path(env["TELEMETRY_DIR"]) / "entities.jsonl").unlink()
    report = run(env)
    assert set(report.failed()) == {"host metrics", "host entity"}
    assert "system.cpu.utilization" in report.cause and "otel.entity.id" in report.cause


def test_missing_keys_are_named_before_anything_is_sent(fake, env):
    del env["CX_API_KEY"]
    report = run(env)
    assert report.failed() == ["config"] and "CX_API_KEY" in report.checks["config"].detail
    assert not any(fake.ingested.values())


def test_cli_exit_code_and_report(fake, env, monkeypatch):
    from workshop.cli import app

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fake.drop.add("logs")
    result = CliRunner().invoke(
        app, ["doctor", "--online", "--timeout", "1", "--poll", "0.05", "--json"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["ok"] is False and data["checks"]["log"]["ok"] is False
    assert data["checks"]["span"]["ok"] is True
    assert API_KEY not in result.output and SEND_KEY not in result.output
