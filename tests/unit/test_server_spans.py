"""The kit's SERVER spans (stack.common.server_spans) against FastAPI's native telemetry, which
they replace: the same requests to the same routes give spans with the same name, kind, parent,
attributes, status and events, and the same exception log records."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from starlette.responses import PlainTextResponse

from stack.common.server_spans import ServerSpans
from stack.common.service import _App
from stack.common.telemetry import _is_probe

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
HEADERS = {
    "traceparent": f"00-{TRACE_ID}-{PARENT}-01",
    "baggage": "workshop.attendee=alice,synthetic_request=true",
}

# (method, path, body, headers): every way a request ends that the services see.
REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/items/42", None, HEADERS),  # a route with a path parameter, a remote parent
    ("GET", "/items/42?q=1&sig=secret", None, {}),  # a query, one parameter redacted
    ("POST", "/jobs", {"name": "x"}, HEADERS),  # a body
    ("POST", "/jobs", {"nope": 1}, {}),  # a body that fails validation: 422
    ("GET", "/missing", None, {}),  # no route: 404, no http.route
    ("DELETE", "/items/42", None, {}),  # a route, not this method: 405
    ("GET", "/gone", None, {}),  # HTTPException 404
    ("GET", "/boom", None, HEADERS),  # an unhandled exception: 500, logged
    ("GET", "/teapot", None, {}),  # a 5xx answered, not raised
    ("GET", "/items/42/", None, {}),  # a slash redirect
    ("GET", "/api/sub/7", None, {}),  # an included router with a prefix
    ("GET", "/static/a/b.txt", None, {}),  # a mount
    ("PURGE", "/items/42", None, {}),  # a method HTTP does not define
    ("GET", "/health", None, {}),  # a probe: never traced
]


class Job(BaseModel):
    name: str


def _routes(app: FastAPI) -> None:
    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/jobs")
    async def job(body: Job) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(404, "gone")

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("boom")

    @app.get("/teapot")
    async def teapot() -> PlainTextResponse:
        return PlainTextResponse("down", status_code=503)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    sub = APIRouter()

    @sub.get("/sub/{n}")
    async def sub_item(n: int) -> dict[str, int]:
        return {"n": n}

    app.include_router(sub, prefix="/api")

    static = FastAPI()

    @static.get("/{path:path}")
    async def files(path: str) -> dict[str, str]:
        return {"path": path}

    app.mount("/static", static)


def _native(tp: TracerProvider, lp: LoggerProvider) -> FastAPI:
    app = FastAPI(
        telemetry={  # type: ignore[call-arg]
            "tracing": True,
            "logs": True,
            "metrics": False,
            "operation_spans": False,
            "exclude": _is_probe,
            "tracer_provider": tp,
            "logger_provider": lp,
        }
    )
    _routes(app)
    return app


def _kit(tp: TracerProvider, lp: LoggerProvider) -> FastAPI:
    app = _App(telemetry={"tracing": False, "logs": False, "metrics": False})  # type: ignore[call-arg]
    app.outer_layer = lambda inner: ServerSpans(
        inner, exclude=_is_probe, tracer_provider=tp, logger_provider=lp
    )
    _routes(app)
    return app


def _providers() -> tuple[InMemorySpanExporter, InMemoryLogRecordExporter, Any, Any]:
    """A tracer and a logger provider that keep what they are given, in memory."""
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return spans, logs, tp, lp


def _record(build: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    spans, logs, tp, lp = _providers()
    app = build(tp, lp)
    statuses: list[int] = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc:8011") as client:
            for method, path, body, headers in REQUESTS:
                resp = await client.request(method, path, json=body, headers=headers)
                statuses.append(resp.status_code)

    asyncio.run(run())
    return (
        [_span(s) for s in spans.get_finished_spans()],
        [_log(r) for r in logs.get_finished_logs()],
        statuses,
    )


def _span(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.schema_url),
        # A root span's trace id is new each time; one continued from the headers is theirs.
        "trace_id": trace_id
        if (trace_id := format(span.context.trace_id, "032x")) == TRACE_ID
        else "new",
        "parent": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "events": [e.name for e in span.events],
        "ended_after_start": span.end_time >= span.start_time,
    }


def _log(data: Any) -> dict[str, Any]:
    record = getattr(data, "log_record", data)
    return {
        "body": record.body,
        "event_name": getattr(record, "event_name", None),
        "severity": record.severity_text,
        # The stack trace names the middleware it passed through, which differ by design.
        "attributes": {
            k: v for k, v in (record.attributes or {}).items() if k != "exception.stacktrace"
        },
        "scope": data.instrumentation_scope.name,
    }


@pytest.fixture(scope="module")
def both() -> dict[str, Any]:
    return {"native": _record(_native), "kit": _record(_kit)}


def test_the_same_answers(both: dict[str, Any]) -> None:
    assert both["kit"][2] == both["native"][2]
    assert 500 in both["kit"][2] and 422 in both["kit"][2] and 405 in both["kit"][2]


def test_the_same_spans_request_for_request(both: dict[str, Any]) -> None:
    native, kit = both["native"][0], both["kit"][0]
    assert len(native) == len(REQUESTS) - 1  # the probe is never traced
    for n, k in zip(native, kit, strict=True):
        assert k == n, (k["name"], n["name"])


def test_what_the_spans_say(both: dict[str, Any]) -> None:
    """Not only equal: what a learner reads in them is there (in REQUESTS' order)."""
    spans = both["kit"][0]
    item, query, _job, invalid, missing, not_allowed, _gone, boom, teapot = spans[:9]
    assert (item["name"], item["kind"].name) == ("GET /items/{item_id}", "SERVER")
    assert (item["trace_id"], item["parent"]) == (TRACE_ID, PARENT)
    assert item["attributes"]["server.address"] == "svc"
    assert item["attributes"]["server.port"] == 8011
    assert item["attributes"]["http.response.status_code"] == 200
    assert item["status"][0].name == "UNSET"
    assert query["attributes"]["url.query"] == "q=1&sig=REDACTED"
    assert (query["trace_id"], query["parent"]) == ("new", None)
    assert invalid["attributes"]["http.response.status_code"] == 422
    assert "http.route" not in missing["attributes"] and missing["name"] == "GET"
    assert not_allowed["attributes"]["http.response.status_code"] == 405
    assert boom["attributes"]["error.type"] == "ValueError"
    assert boom["status"][0].name == "ERROR"
    assert teapot["attributes"]["error.type"] == "503"
    names = [s["name"] for s in spans]
    assert "GET /api/sub/{n}" in names and "GET /static/{path}" in names
    assert spans[-1]["attributes"]["http.request.method"] == "_OTHER"
    assert spans[-1]["name"].startswith("HTTP")


def test_the_same_exception_logs(both: dict[str, Any]) -> None:
    native, kit = both["native"][1], both["kit"][1]
    assert kit == native
    assert [r["event_name"] for r in kit] == [
        "fastapi.validation.failed",
        "http.server.request.exception",
    ]
    assert kit[0]["attributes"] == {"fastapi.validation.error_count": 1, "http.route": "/jobs"}
    assert kit[1]["attributes"]["http.route"] == "/boom"
    assert kit[1]["attributes"]["exception.type"] == "ValueError"


def test_a_span_ends_when_its_answer_is_sent() -> None:
    """The span ends with the last body chunk, not when background work after it finishes."""
    spans, _logs, tp, lp = _providers()
    app = _kit(tp, lp)
    ended_before_background: list[bool] = []

    @app.get("/later")
    async def later() -> PlainTextResponse:
        from starlette.background import BackgroundTask

        def after() -> None:
            ended_before_background.append(len(spans.get_finished_spans()) == 1)

        return PlainTextResponse("ok", background=BackgroundTask(after))

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            assert (await client.get("/later")).status_code == 200

    asyncio.run(run())
    assert ended_before_background == [True]
