"""The CLIENT spans of stack.common.http.ServiceClient against the package they replace:
opentelemetry-instrumentation-aiohttp-client. The same calls (an answer, a 4xx, a 5xx, a
peer that is down) give spans with the same name, kind, attributes and status, and both put
the span's context in the request's traceparent header."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from stack.common.http import ServiceClient
from stack.common.problems import Problem
from stack.common.settings import ServiceName, Settings

PATHS = ("/ok", "/missing", "/broken")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _server(seen: list[str]) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent", ""))
        status = {"/ok": 200, "/missing": 404, "/broken": 503}[request.path]
        return web.json_response({"detail": request.path}, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def _summary(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "events": [e.name for e in span.events],
        "span_id": format(span.context.span_id, "016x"),
    }


def _record(call: Any, instrument: Any = None) -> tuple[list[dict[str, Any]], list[str]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    seen: list[str] = []
    uninstrument = instrument(provider) if instrument else None
    previous = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER = provider  # ServiceClient's tracer is the global one
    try:

        async def run() -> None:
            runner, port = await _server(seen)
            try:
                await call(port, _free_port())
            finally:
                await runner.cleanup()

        asyncio.run(run())
    finally:
        trace._TRACER_PROVIDER = previous
        if uninstrument:
            uninstrument()
    return [_summary(s) for s in memory.get_finished_spans()], seen


def _comparable(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "span_id"} for s in spans]


# The error.type of a call to a peer that is down names the client's own exception class.
REFUSED = {"wire": "ConnectError", "aiohttp": "ClientConnectorError"}


@pytest.mark.parametrize("client", ["wire", "aiohttp"])
def test_spans_match_the_instrumentation_package(monkeypatch, client: str) -> None:
    """Over either client (HTTP_CLIENT): the same spans as the package's over aiohttp."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database/dup")
    monkeypatch.setenv("HTTP_CLIENT", client)

    async def package_calls(port: int, down: int) -> None:
        async with aiohttp.ClientSession() as session:
            for path in PATHS:
                async with session.post(f"http://127.0.0.1:{port}{path}", json={}) as resp:
                    await resp.read()
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.post(f"http://127.0.0.1:{down}/ok", json={})

    def instrument(provider: TracerProvider) -> Any:
        package = AioHttpClientInstrumentor()
        package.instrument(tracer_provider=provider, meter_provider=NoOpMeterProvider())
        return package.uninstrument

    async def kit_calls(port: int, down: int) -> None:
        monkeypatch.setenv("SERVICE_URL_TEMPLATE", f"http://127.0.0.1:{port}")
        client = ServiceClient(Settings(), traced=True)
        await client.start()
        try:
            await client.post(ServiceName.QUERY, "/ok", json={})
            for path in PATHS[1:]:
                with pytest.raises(Problem):
                    await client.post(ServiceName.QUERY, path, json={})
            monkeypatch.setenv("SERVICE_URL_TEMPLATE", f"http://127.0.0.1:{down}")
            down_client = ServiceClient(Settings(), traced=True)
            await down_client.start()
            with pytest.raises(Problem):
                await down_client.post(ServiceName.QUERY, "/ok", json={})
            await down_client.close()
        finally:
            await client.close()

    theirs, their_headers = _record(package_calls, instrument)
    ours, our_headers = _record(kit_calls)
    # Ports differ between the two runs (each starts its own server): compare the rest.
    for spans in (theirs, ours):
        for s in spans:
            s["attributes"].pop("server.port")
            s["attributes"]["url.full"] = s["attributes"]["url.full"].split("/", 3)[-1]
    refused = ours[3]
    assert refused["attributes"]["error.type"] == REFUSED[client]
    assert refused["status"] == (StatusCode.ERROR, REFUSED[client])
    refused["attributes"]["error.type"] = "ClientConnectorError"
    refused["status"] = (StatusCode.ERROR, "ClientConnectorError")
    assert _comparable(ours) == _comparable(theirs)
    assert [s["kind"] for s in ours] == [SpanKind.CLIENT] * 4
    assert [s["status"][0] for s in ours] == [StatusCode.UNSET, *[StatusCode.ERROR] * 3]
    assert [s["attributes"].get("error.type") for s in ours] == [None, "404", "503"] + [
        "ClientConnectorError"  # the wire client's ConnectError, renamed for the comparison
    ]
    # Each request carried its own span as the parent for the server's span.
    for spans, headers in ((ours, our_headers), (theirs, their_headers)):
        assert [h.split("-")[2] for h in headers] == [s["span_id"] for s in spans[:3]]


def test_untraced_client_sends_no_traceparent(monkeypatch) -> None:
    async def calls(port: int, _down: int) -> None:
        monkeypatch.setenv("SERVICE_URL_TEMPLATE", f"http://127.0.0.1:{port}")
        client = ServiceClient(Settings(), traced=False)
        await client.start()
        await client.post(ServiceName.QUERY, "/ok", json={})
        await client.close()

    spans, headers = _record(calls)
    assert spans == [] and headers == [""]
