"""The services' SERVER spans: FastAPI's native telemetry, along a shorter path.

FastAPI's own telemetry (`FastAPI(telemetry=...)`) opens a SERVER span per request. Per request
it walks the middleware stack looking for contrib's OpenTelemetry middleware, builds a
`Headers` object to extract the context and another to parse the Host header, looks up its
logger, attaches two contexts and enters a generator-based `use_span`. In-process that is
about a fifth of a small route's CPU (validation-service's POST /validate, in-process:
128 → 104 µs a request, issue 19).

`ServerSpans` wraps the app's middleware stack from outside, where FastAPI's telemetry sits, and
opens the same span: the same name, kind, parent, attributes, status and end time. It reads the
propagation headers and Host straight from the ASGI header list, caches the server attributes
per Host, attaches one context, and looks its logger up once. It hands FastAPI the same
per-request record (`scope["fastapi.telemetry"]` and in the context), so FastAPI's router
still names the route (`http.route`, mounts and slash redirects included), a failed request
validation is still logged, and FastAPI's exception middleware still records an unhandled
exception and logs it, exactly as with its own telemetry.
tests/unit/test_server_spans.py compares the two span for span.

SERVER_SPANS=fastapi keeps FastAPI's own telemetry (the budget bench's baseline arm).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from functools import lru_cache
from time import time_ns
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import __version__ as fastapi_version
from fastapi.telemetry._api import (
    _HTTP_METHODS,
    _REQUEST_TELEMETRY_KEY,
    _exception_type,
    _RequestTelemetry,
)
from fastapi.telemetry._asgi import _SCHEMA_URL, _SENSITIVE_QUERY_PARAMETERS, _server_attributes
from opentelemetry import _logs, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The headers a propagator reads, as they arrive (ASGI lowercases header names).
_PROPAGATION = frozenset({b"traceparent", b"tracestate", b"baggage"})


@lru_cache(maxsize=256)
def _server_attributes_of(host: bytes | None, scheme: str, server: Any) -> dict[str, Any]:
    """FastAPI's own rule (server.address and server.port from Host, else the socket), once per
    distinct Host: a service hears the same one or two all day."""
    headers = [(b"host", host)] if host is not None else []
    return _server_attributes({"headers": headers, "scheme": scheme, "server": server})


def _hashable(server: Any) -> tuple[Any, ...] | None:
    """ASGI's `server` is a (host, port) pair; some servers give it as a list."""
    return tuple(server) if server is not None else None


class ServerSpans:
    """ASGI middleware: one SERVER span per HTTP request, as FastAPI's native telemetry opens it
    with tracing and logs on, metrics and operation spans off (stack.common.telemetry)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        exclude: Callable[[MutableMapping[str, Any]], bool],
        tracer_provider: trace.TracerProvider | None = None,
        logger_provider: _logs.LoggerProvider | None = None,
    ) -> None:
        """The providers default to the global ones, as FastAPI's do; the layer is built with
        the app's middleware stack, on its first request, after the service set them."""
        self.app = app
        self._exclude = exclude
        self._tracer = trace.get_tracer(
            "fastapi", fastapi_version, tracer_provider, schema_url=_SCHEMA_URL
        )
        self._logger = _logs.get_logger(
            "fastapi", fastapi_version, logger_provider, schema_url=_SCHEMA_URL
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._exclude(scope):
            scope["fastapi.telemetry"] = None  # as FastAPI does: nothing below observes it
            try:
                await self.app(scope, receive, send)
            finally:
                scope.pop("fastapi.telemetry", None)
            return
        original_method = scope.get("method", "")
        method = original_method if original_method in _HTTP_METHODS else "_OTHER"
        span_method = "HTTP" if method == "_OTHER" else method
        scheme = scope.get("scheme", "http")
        attributes: dict[str, Any] = {"url.scheme": scheme, "http.request.method": method}
        if scope.get("http_version"):
            attributes["network.protocol.version"] = scope["http_version"]

        host: bytes | None = None
        carrier: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            if name == b"host":
                if host is None:
                    host = value
            elif name in _PROPAGATION:
                carrier.setdefault(name.decode(), []).append(value.decode("latin-1"))
        if len(baggage := carrier.get("baggage", ())) > 1:
            carrier["baggage"] = [",".join(baggage)]  # as FastAPI's getter: one value is read
        parent = propagate.extract(carrier)  # the default getter reads a dict of lists
        span_attributes = {
            **attributes,
            **_server_attributes_of(host, scheme, _hashable(scope.get("server"))),
            "url.path": scope["path"],
        }
        if scope.get("query_string"):
            span_attributes["url.query"] = _url_query(scope["query_string"])
        if original_method != method:
            span_attributes["http.request.method_original"] = original_method
        span = self._tracer.start_span(
            span_method, context=parent, kind=SpanKind.SERVER, attributes=span_attributes
        )
        record = _RequestTelemetry(
            span=span,
            span_method=span_method,
            logger=self._logger,
            _mount_prefix=scope.get("app_root_path", scope.get("root_path", "")).rstrip("/"),
        )
        scope["fastapi.telemetry"] = record
        # One context for what FastAPI attaches in two: the span current, and the record its
        # routing reads (a failed validation is logged through it).
        token = otel_context.attach(
            otel_context.set_value(
                _REQUEST_TELEMETRY_KEY, record, trace.set_span_in_context(span, parent)
            )
        )
        finished = trailers = disconnected = False

        def finish(error: BaseException | None = None) -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            if record.route is not None:
                attributes["http.route"] = record.route
            if record.status_code is not None:
                attributes["http.response.status_code"] = record.status_code
            failed = error is not None or record.status_code is None or record.status_code >= 500
            if failed:
                failure = error or (record._exceptions[-1] if record._exceptions else None)
                attributes["error.type"] = (
                    _exception_type(failure)
                    if failure
                    else str(record.status_code or "incomplete_response")
                )
            span.set_attributes(attributes)
            if failed:
                span.set_status(StatusCode.ERROR)
            span.end()

        async def wrapped_send(message: Message) -> None:
            nonlocal trailers
            kind = message["type"]
            if kind == "http.response.start":
                record.status_code = message["status"]
                trailers = message.get("trailers", False)
            await send(message)
            if (
                (kind == "http.response.body" and not message.get("more_body") and not trailers)
                or (kind == "http.response.trailers" and not message.get("more_trailers"))
                or kind == "http.response.pathsend"
            ):
                finish()

        async def wrapped_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        try:
            await self.app(scope, wrapped_receive, wrapped_send)
        except BaseException as exc:
            _record_exception(record, exc)
            finish(exc)
            raise
        finally:
            if not finished:
                finish(
                    ConnectionError("Client disconnected")
                    if disconnected
                    else RuntimeError("Incomplete ASGI response")
                )
            record.data = None
            record._exceptions.clear()
            otel_context.detach(token)
            scope.pop("fastapi.telemetry", None)


def _record_exception(record: _RequestTelemetry, exc: BaseException) -> None:
    """FastAPI's exception middleware records (and logs) an unhandled exception once; one that
    got past it, record here the same way."""
    if any(previous is exc for previous in record._exceptions):
        return
    record._exceptions.append(exc)
    if record.logger is not None and isinstance(exc, Exception):
        record.logger.emit(
            exception=exc,
            event_name="http.server.request.exception",
            timestamp=time_ns(),
            severity_number=_logs.SeverityNumber.ERROR,
            severity_text="ERROR",
            body="Unhandled exception in FastAPI request",
            attributes={"http.route": record.route} if record.route else None,
        )


def _url_query(raw: bytes) -> str:
    return urlencode(
        [
            (key, "REDACTED" if key in _SENSITIVE_QUERY_PARAMETERS else value)
            for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
        ]
    )
