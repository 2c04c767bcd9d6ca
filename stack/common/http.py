"""The one HTTP client services use to call each other.

Calls between services go over the kit's lean HTTP/1.1 client (stack/common/http_wire.py,
HTTP_CLIENT=wire): a third of aiohttp's CPU per call (issue 19). aiohttp stays for what needs
a general client — the frontend's streaming proxy, external-api's calls to a real provider —
and for every call with HTTP_CLIENT=aiohttp or CLIENT_SPANS=packages (the budget bench's
baseline arm). aiohttp rather than httpx for those: over a chain of 7 bare uvicorn hops on a
2-core machine aiohttp's client forwarded ~640 req/s and httpx's AsyncClient ~150 (see
docs/benchmarks.md). Pooled keep-alive connections, explicit connect/read timeouts, and every
failure mapped to a problem that names the downstream service: 503 when it cannot be reached,
504 when it is too slow, 502 when it answers with a server error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from stack.common.faults.engine import request_baggage
from stack.common.http_wire import ConnectError, Disconnected, WireClient, WireError
from stack.common.problems import Problem
from stack.common.settings import ServiceName, Settings

# Idle keep-alive: whoever holds an idle connection must give it up before the server does.
# A client that reuses a connection in the instant the server closes it gets a reset, and a
# POST is not retried (nginx does not retry non-idempotent requests; nor does this client).
# So: uvicorn keeps idle connections SERVER_KEEPALIVE_SECONDS, this client and nginx's
# upstream pools (`keepalive_timeout` in stack/nginx/*.conf, default 60 s, nginx.org
# ngx_http_upstream_module#keepalive_timeout) CLIENT_KEEPALIVE_SECONDS.
SERVER_KEEPALIVE_SECONDS = 30
CLIENT_KEEPALIVE_SECONDS = 15


@dataclass(slots=True)
class _Call:
    """One request between services, as request() hands it to a sender."""

    service: ServiceName
    method: str
    path: str
    url: str
    data: bytes | None
    params: dict[str, Any] | None
    headers: dict[str, str]
    read_timeout: float | None  # None: the client's own


class ServiceClient:
    def __init__(self, settings: Settings, *, traced: bool = False) -> None:
        """`traced`: one CLIENT span per call, its context in the request's headers (the
        service's telemetry is on)."""
        self.settings = settings
        self.traced = traced
        self._tracer = trace.get_tracer("stack.http")
        self._peers: dict[ServiceName, tuple[str, int]] = {}
        self._session: aiohttp.ClientSession | None = None
        # The packages' CLIENT spans hook aiohttp: with them, every call goes through aiohttp.
        wire = settings.http_client == "wire" and settings.client_spans == "kit"
        self._wire = (
            WireClient(
                pool_size=settings.http_pool_size,
                connect_timeout=settings.http_connect_timeout,
                read_timeout=settings.http_read_timeout,
                keepalive_s=CLIENT_KEEPALIVE_SECONDS,
            )
            if wire
            else None
        )
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.http_connect_timeout,
            sock_read=settings.http_read_timeout,
        )

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.settings.http_pool_size,
                ttl_dns_cache=300,
                keepalive_timeout=CLIENT_KEEPALIVE_SECONDS,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )

    async def close(self) -> None:
        if self._wire is not None:
            await self._wire.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ServiceClient.start() was not awaited")
        return self._session

    async def request(
        self,
        service: ServiceName,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        url = self.settings.url(service) + path
        data = orjson.dumps(json) if json is not None else None
        hdrs = {"content-type": "application/json"} if data is not None else {}
        if headers:
            hdrs.update(headers)
        # Forward the caller's baggage even with OTEL_SDK_DISABLED (fault scopes rely on it);
        # with the SDK on, the span's propagation rewrites it from the active context.
        if "baggage" not in hdrs and (bag := request_baggage.get()):
            hdrs["baggage"] = bag
        send = self._traced_send if self._tracing() else self._send
        call = _Call(service, method, path, url, data, params, hdrs, read_timeout or None)
        status, body, retry_after = await send(call)
        payload = _decode(body)
        if status < 400:
            return payload
        detail = payload.get("detail") if isinstance(payload, dict) else None
        if status >= 500:
            # Keep the service that failed first: a 502 from a deeper hop names the real culprit.
            culprit = (
                payload.get("service") if isinstance(payload, dict) else None
            ) or service.value
            message = detail or f"HTTP {status}"
            raise Problem(
                502 if status != 504 else 504,
                message if message.startswith(culprit) else f"{culprit} failed: {message}",
                service=culprit,
                slug="downstream-error",
            )
        headers_out = {"retry-after": retry_after} if retry_after else None
        raise Problem(
            status,
            detail or f"{service.value} answered HTTP {status}",
            service=service.value,
            errors=payload.get("errors") if isinstance(payload, dict) else None,
            headers=headers_out,
        )

    async def _send(self, call: _Call) -> tuple[int, bytes, str | None]:
        if self._wire is not None:
            host, port = self._peer(call.service)
            try:
                return await self._wire.request(
                    call.method,
                    host,
                    port,
                    call.path,
                    params=call.params,
                    headers=call.headers,
                    data=call.data,
                    read_timeout=call.read_timeout,
                )
            except (TimeoutError, WireError) as exc:
                raise transport_problem(call.service, exc) from exc
        # Passing timeout=None to aiohttp would disable the session's timeouts: only
        # override them when asked to.
        extra: dict[str, Any] = {}
        if call.read_timeout:
            extra["timeout"] = aiohttp.ClientTimeout(
                total=None, connect=self.settings.http_connect_timeout, sock_read=call.read_timeout
            )
        try:
            async with self.session.request(
                call.method,
                call.url,
                data=call.data,
                params=call.params,
                headers=call.headers,
                **extra,
            ) as resp:
                return resp.status, await resp.read(), resp.headers.get("retry-after")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_problem(call.service, exc) from exc

    async def _traced_send(self, call: _Call) -> tuple[int, bytes, str | None]:
        peer = self._peer(call.service)
        with self._client_span(peer, call.method, call.url, call.params, call.headers) as span:
            status, body, retry_after = await self._send(call)
            record_response(span, status)
            return status, body, retry_after

    def client_span(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        params: Any = None,
        service: ServiceName | None = None,
    ) -> AbstractContextManager[Span | None]:
        """The CLIENT span of a call made outside `request()` (the frontend's streaming proxy,
        external-api's pass-through to a real provider), or None when this client is
        untraced; its context goes into `headers`. The caller records the answer with
        `record_response`."""
        if not self._tracing():
            return nullcontext()
        peer = self._peer(service) if service is not None else _peer_of(url)
        return self._client_span(peer, method, url, params, headers)

    def _tracing(self) -> bool:
        """This call gets a CLIENT span: telemetry is on and no untraced() block is active."""
        return self.traced and not get_value(_SUPPRESS_INSTRUMENTATION_KEY)

    @contextmanager
    def _client_span(
        self,
        peer: tuple[str, int],
        method: str,
        url: str,
        params: Any,
        headers: dict[str, str],
    ) -> Iterator[Span]:
        """The CLIENT span opentelemetry-instrumentation-aiohttp-client made (its name,
        attributes and error rules under the stable HTTP conventions), for half its CPU: that
        package hooks aiohttp's TraceConfig signals, a coroutine per request phase (issue 19).
        The span also covers reading the body, which the package's ended before."""
        host, port = peer
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.full": f"{url}?{urlencode(params)}" if params else url,
            "server.address": host,
            "server.port": port,
        }
        with self._tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            propagate.inject(headers)  # traceparent, tracestate, baggage of this span
            try:
                yield span
            except (Problem, TimeoutError, aiohttp.ClientError, WireError) as exc:
                # A transport failure (request() wraps the client's error in a Problem). A
                # problem raised about an answer already has the answer's status on the span.
                cause = exc.__cause__ if isinstance(exc, Problem) else exc
                if isinstance(cause, TimeoutError | aiohttp.ClientError | WireError):
                    error_type = type(cause).__qualname__
                    span.set_attribute("error.type", error_type)
                    span.set_status(Status(StatusCode.ERROR, error_type))
                    span.record_exception(cause)
                raise

    def _peer(self, service: ServiceName) -> tuple[str, int]:
        peer = self._peers.get(service)
        if peer is None:
            peer = self._peers[service] = _peer_of(self.settings.url(service))
        return peer

    async def get(self, service: ServiceName, path: str, **kw: Any) -> Any:
        return await self.request(service, "GET", path, **kw)

    async def post(self, service: ServiceName, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request(service, "POST", path, json=json, **kw)


def _peer_of(url: str) -> tuple[str, int]:
    """server.address and server.port of a URL, the port defaulting by scheme."""
    parsed = urlsplit(url)
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def record_response(span: Span | None, status: int) -> None:
    """The answer's status on a CLIENT span; a client span fails on 4xx too (HTTP semantic
    conventions)."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


def transport_problem(service: ServiceName, exc: BaseException) -> Problem:
    """A call that got no HTTP answer, as the problem the caller returns: 503 when the
    service cannot be reached, 504 when it is too slow, 502 for anything else."""
    unreachable = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)
    if isinstance(exc, (*unreachable, ConnectError, Disconnected)):
        return Problem(
            503,
            f"{service.value} is unavailable ({type(exc).__name__})",
            service=service.value,
            slug="downstream-unavailable",
        )
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return Problem(
            504,
            f"{service.value} did not answer in time",
            service=service.value,
            slug="downstream-timeout",
        )
    return Problem(
        502,
        f"{service.value} failed: {type(exc).__name__}",
        service=service.value,
        slug="downstream-error",
    )


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"detail": body[:200].decode(errors="replace")}
