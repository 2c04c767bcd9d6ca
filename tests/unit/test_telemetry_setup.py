"""OTEL_SDK_DISABLED turns telemetry off cleanly; resource attributes follow the conventions
in docs/architecture.md; exports go to the collector whatever proxy the environment names."""

from __future__ import annotations

import http.server
import threading

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import resource_attributes, setup_telemetry, span_exporter


def test_disabled_sdk_sets_nothing_up(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = setup_telemetry(ServiceName.QUERY, Settings(), "1.0.0")
    assert telemetry.enabled is False
    telemetry.shutdown()  # a no-op, never an error


def test_resource_attributes() -> None:
    attrs = resource_attributes(ServiceName.STORAGE, Settings(), "1.2.3")
    assert attrs["service.name"] == "storage-service"
    assert attrs["cx.subsystem.name"] == "storage-service"
    assert attrs["service.namespace"] == "dataprime"
    assert attrs["service.version"] == "1.2.3"
    assert attrs["cx.application.name"] == "dataprime-workshop"
    assert attrs["deployment.environment.name"] == "workshop"


def test_exports_reach_the_collector_past_a_proxy_in_the_environment(monkeypatch) -> None:
    """An instructor's shell with HTTP_PROXY and no NO_PROXY for the collector: the services'
    OTLP exports still go straight to it, not to the proxy (which does not resolve here)."""
    received: list[str] = []

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None: ...

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, "http://proxy.invalid:3128")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        provider = TracerProvider()
        exporter = span_exporter(Settings())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("work"):
            pass
        provider.shutdown()
        assert received == ["/v1/traces"]
    finally:
        sink.shutdown()
