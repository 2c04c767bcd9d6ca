"""frontend in-process: the UI's page, and `/api/*` forwarded to the gateway."""

from __future__ import annotations

import asyncio

from stack.common.settings import ServiceName, Settings
from stack.frontend.app import create_app
from stack.services import gateway
from tests.unit.inprocess import client_for, serving


def test_serves_the_ui_and_forwards_the_api(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as ui:
            page = await ui.get("/")
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert page.headers["cache-control"] == "no-cache"
            # no gateway listening: a problem naming it, not a hang or a traceback
            down = await ui.get("/api/config")
            assert down.status_code in (502, 503) and down.json()["service"] == "api-gateway"
            port = route_settings.port(ServiceName.GATEWAY)
            async with serving(gateway.create_app(route_settings), port):
                up = await ui.get("/api/config")
                assert up.status_code == 200 and "coralogix" in up.json()

    asyncio.run(scenario())


def test_the_forwarded_call_is_a_child_span_of_the_ui_hop(
    route_settings: Settings, traced_spans
) -> None:
    """A page's request (its own traceparent) through the UI's proxy: the gateway must see the
    proxy's CLIENT span as its parent, not the page's span, or the trace has two roots under
    the page and the waterfall never completes (found in the online browser test)."""
    from aiohttp import web
    from opentelemetry.trace import SpanKind

    page_trace, page_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    seen: list[str] = []

    async def fake_gateway(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent", ""))
        return web.json_response({"ok": True})

    async def scenario() -> None:
        gw = web.Application()
        gw.router.add_get("/api/config", fake_gateway)
        runner = web.AppRunner(gw)
        await runner.setup()
        port = route_settings.port(ServiceName.GATEWAY)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with client_for(create_app(route_settings)) as ui:
                r = await ui.get(
                    "/api/config", headers={"traceparent": f"00-{page_trace}-{page_span}-01"}
                )
                assert r.status_code == 200
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    spans = {s.kind: s for s in traced_spans.get_finished_spans()}
    server, client = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert format(server.parent.span_id, "016x") == page_span
    assert client.parent.span_id == server.context.span_id
    assert client.attributes["http.response.status_code"] == 200
    _, trace_id, parent_id, _ = seen[0].split("-")
    assert trace_id == page_trace
    assert parent_id == format(client.context.span_id, "016x")
