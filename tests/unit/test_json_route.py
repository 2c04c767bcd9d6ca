"""Routes that take plain path parameters and a JSON body (stack.common.json_route) answer
exactly as FastAPI's own handler does — valid bodies, refused ones, every kind of return value
— and take the short path only where they can."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Path
from pydantic import BaseModel, Field
from starlette.responses import PlainTextResponse

from stack.common.json_route import JSONBodyRoute, _short_path
from stack.common.problems import install_problem_handlers
from stack.common.settings import Settings


class Ask(BaseModel):
    question: str = Field(min_length=1, max_length=50)
    count: int = 1


class Answer(BaseModel):
    text: str
    at: dt.datetime


def _routes(router: APIRouter) -> None:
    @router.post("/plain")
    async def plain(body: Ask) -> dict[str, Any]:
        return {"q": body.question, "n": body.count, "ratio": 0.5, "none": None, "é": "ü"}

    @router.post("/accepted", status_code=202)
    async def accepted(body: Ask) -> dict[str, Any]:
        return {"queued": body.question}

    @router.post("/unannotated")
    async def unannotated(body: Ask):  # type: ignore[no-untyped-def]
        return {"at": dt.datetime(2026, 12, 7, 10, 0), "n": body.count}

    @router.post("/unannotated-nan")
    async def unannotated_nan(body: Ask):  # type: ignore[no-untyped-def]
        return {"nan": float("nan")}

    @router.post("/model")
    async def model(body: Ask) -> Answer:
        return Answer(text=body.question, at=dt.datetime(2026, 12, 7, 10, 0))

    @router.post("/not-finite")
    async def not_finite(body: Ask) -> dict[str, Any]:
        return {"inf": float("inf")}

    @router.post("/own-response")
    async def own_response(body: Ask) -> PlainTextResponse:
        return PlainTextResponse(body.question, status_code=201)

    @router.post("/wrong-answer")
    async def wrong_answer(body: Ask) -> dict[str, Any]:
        return ["not", "a", "dict"]  # type: ignore[return-value]

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, Any]:
        return {"id": item_id}

    @router.put("/results/{job_id}")
    async def result(job_id: str, body: Ask) -> dict[str, Any]:
        return {"id": job_id, "q": body.question}

    @router.get("/numbers/{n}")
    async def number(n: int) -> dict[str, Any]:
        return {"n": n}

    @router.get("/codes/{code}")
    async def code(code: Annotated[str, Path(min_length=3)]) -> dict[str, Any]:
        return {"code": code}

    def token() -> str:
        return "t"

    @router.post("/with-dependency")
    async def with_dependency(body: Ask, t: str = Depends(token)) -> dict[str, Any]:
        return {"q": body.question, "t": t}

    @router.post("/with-query")
    async def with_query(body: Ask, page: int = 1) -> dict[str, Any]:
        return {"q": body.question, "page": page}


def _app(route_class: type | None) -> FastAPI:
    app = FastAPI()
    if route_class is not None:
        app.router.route_class = route_class
    install_problem_handlers(app)
    _routes(app.router)
    return app


JSON = {"content-type": "application/json"}
REQUESTS: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/plain", b'{"question": "errors by service", "count": 3}', JSON),
    ("POST", "/plain", b'{"question": "x"}', {"content-type": "application/json; charset=utf-8"}),
    ("POST", "/plain", b'{"question": ""}', JSON),  # too short: 422
    ("POST", "/plain", b'{"question": "x", "count": "many"}', JSON),  # wrong type: 422
    ("POST", "/plain", b'{"count": 2}', JSON),  # missing field: 422
    ("POST", "/plain", b'{"question": ', JSON),  # not JSON: 422
    ("POST", "/plain", b"", JSON),  # no body: 422
    ("POST", "/plain", b'{"question": "x"}', {"content-type": "text/plain"}),  # not JSON by type
    ("POST", "/plain", b'{"question": "x"}', {}),  # no content type
    ("POST", "/plain", b'["question"]', JSON),  # not an object
    ("POST", "/accepted", b'{"question": "x"}', JSON),
    ("POST", "/unannotated", b'{"question": "x", "count": 2}', JSON),
    ("POST", "/model", b'{"question": "x"}', JSON),
    ("POST", "/own-response", b'{"question": "x"}', JSON),
    ("POST", "/with-dependency", b'{"question": "x"}', JSON),
    ("POST", "/with-query?page=3", b'{"question": "x"}', JSON),
    ("GET", "/items/abc%20def", b"", {}),
    ("PUT", "/results/job-1", b'{"question": "x"}', JSON),
    ("PUT", "/results/job-1", b'{"question": 5}', JSON),  # 422
    ("PUT", "/results/job-1", b'{"question": "x"}', {"content-type": "text/plain"}),
    ("GET", "/numbers/5", b"", {}),
    ("GET", "/numbers/five", b"", {}),  # 422
    ("GET", "/codes/ab", b"", {}),  # 422
    ("GET", "/codes/abc", b"", {}),
    ("POST", "/items/abc", b"", {}),  # 405
]


def _answers(app: FastAPI) -> list[tuple[int, str, bytes]]:
    async def run() -> list[tuple[int, str, bytes]]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            out = []
            for method, path, body, headers in REQUESTS:
                resp = await client.request(method, path, content=body, headers=headers)
                out.append((resp.status_code, resp.headers.get("content-type", ""), resp.content))
            return out

    return asyncio.run(run())


def test_the_same_answers_as_fastapi() -> None:
    fastapi, kit = _answers(_app(None)), _answers(_app(JSONBodyRoute))
    for request, theirs, ours in zip(REQUESTS, fastapi, kit, strict=True):
        assert ours == theirs, request
    statuses = [status for status, _, _ in kit]
    assert statuses.count(200) == 10 and statuses.count(422) == 12
    assert {202, 201, 405} <= set(statuses)


def test_a_result_fastapi_refuses_is_refused_alike() -> None:
    """A non-finite float, through a declared answer or an undeclared one, and an answer of the
    wrong shape: the endpoint's bugs, each ending as FastAPI ends it."""

    async def run(app: FastAPI) -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return [
                (r.status_code, r.content)
                for r in [
                    await client.post(path, json={"question": "x"})
                    for path in ("/not-finite", "/unannotated-nan", "/wrong-answer")
                ]
            ]

    assert asyncio.run(run(_app(JSONBodyRoute))) == asyncio.run(run(_app(None)))


@pytest.mark.parametrize(
    ("path", "short"),
    [
        ("/plain", True),
        ("/accepted", True),
        ("/unannotated", True),
        ("/model", True),
        ("/own-response", True),
        ("/with-dependency", False),
        ("/with-query", False),
        ("/items/{item_id}", True),
        ("/results/{job_id}", True),
        ("/numbers/{n}", False),
        ("/codes/{code}", False),
    ],
)
def test_only_plain_path_parameters_and_a_json_body_take_the_short_path(
    path: str, short: bool
) -> None:
    app = _app(JSONBodyRoute)
    route = next(r for r in app.routes if getattr(r, "path", None) == path)
    assert (_short_path(route) is not None) is short  # type: ignore[arg-type]


def test_the_services_routes_take_it(route_settings: Settings) -> None:
    """The hops a question makes between services are such routes."""
    from stack.services import external_api, gateway, processing, query, queue, storage, validation

    for module, path in (
        (gateway, "/api/queries/{job_id}"),
        (storage, "/results/{job_id}"),
        (validation, "/validate"),
        (processing, "/execute"),
        (queue, "/jobs"),
        (query, "/generate"),
        (external_api, "/v1/chat/completions"),
    ):
        app = module.create_app(route_settings)
        route = next(r for r in app.routes if getattr(r, "path", None) == path)
        assert isinstance(route, JSONBodyRoute), path
        assert _short_path(route) is not None, path


def test_a_body_that_cannot_be_read_is_answered_alike() -> None:
    """The client goes away before its body arrives: FastAPI answers 400, and so does the
    short path (it hands the request over)."""

    async def call(app: FastAPI) -> list[int]:
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/plain",
            "raw_path": b"/plain",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"svc"), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        return statuses

    ours, theirs = asyncio.run(call(_app(JSONBodyRoute))), asyncio.run(call(_app(None)))
    assert ours == theirs == [400]
