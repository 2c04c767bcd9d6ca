"""frontend: serves the single-page UI and forwards `/api/*` to the api-gateway.

Behind nginx, `/api/` never reaches this process (nginx routes it to the gateway directly).
Without nginx (a user opening http://127.0.0.1:8020), the UI still works because this app
forwards `/api/*` itself: a small streaming reverse proxy over the service's shared aiohttp
session. Its CLIENT span (ServiceClient.client_span) re-injects `traceparent`/`baggage` from the
active context, so the gateway's spans become children of this hop and keep the attendee's
baggage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from stack.common.http import record_response, transport_problem
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import NOT_TRACED_PREFIXES, untraced

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Request headers passed to the gateway, and response headers passed back.
FORWARD_REQUEST = (
    "content-type",
    "authorization",
    "baggage",
    "traceparent",
    "tracestate",
    "cookie",
    "accept",
)
FORWARD_RESPONSE = ("content-type", "retry-after", "www-authenticate", "location")


class _UIFiles(StaticFiles):
    """Static files; `index.html` is revalidated on every load so a new release shows at once."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("cache-control", "no-cache")
        return response


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The UI's app (run by `python -m stack.run frontend`)."""
    service = Service(
        ServiceName.FRONTEND, title="DataPrime Assistant UI", settings=settings, redis=redis
    )
    app = service.app
    cfg = service.settings

    @app.api_route(
        "/api/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def proxy_api(request: Request, path: str) -> Response:
        url = f"{cfg.url(ServiceName.GATEWAY)}/api/{path}"
        headers = {k: v for k in FORWARD_REQUEST if (v := request.headers.get(k)) is not None}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        body = await request.body()
        # The UI's telemetry views are not traced (watching must not add spans), hop included.
        quiet = untraced() if f"/api/{path}".startswith(NOT_TRACED_PREFIXES) else nullcontext()
        params = list(request.query_params.multi_items())
        try:
            with (
                quiet,
                service.http.client_span(
                    request.method, url, headers, params=params, service=ServiceName.GATEWAY
                ) as span,
            ):
                upstream = await service.http.session.request(
                    request.method,
                    url,
                    params=params,
                    data=body or None,
                    headers=headers,
                    allow_redirects=False,
                )
                record_response(span, upstream.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_problem(ServiceName.GATEWAY, exc) from exc

        raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k in FORWARD_RESPONSE
            for v in upstream.headers.getall(k, [])
        ] + [
            (b"set-cookie", v.encode("latin-1")) for v in upstream.headers.getall("set-cookie", [])
        ]

        async def stream() -> AsyncIterator[bytes]:
            async for chunk in upstream.content.iter_chunked(16_384):
                yield chunk

        response = StreamingResponse(
            stream(), status_code=upstream.status, background=BackgroundTask(upstream.release)
        )
        response.raw_headers = raw_headers
        return response

    app.mount("/", _UIFiles(directory=STATIC_DIR, html=True), name="ui")
    return app
