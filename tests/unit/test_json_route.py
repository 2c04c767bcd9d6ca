"""Routes whose one argument is a JSON body (stack.common.json_route) answer exactly as
FastAPI's own handler does — valid bodies, refused ones, every kind of return value — and take
the short path only where they can."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field
from starlette.responses import PlainTextResponse

from stack.common.json_route import JSONBodyRoute, _only_body_model
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
REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("/plain", b'{"question": "errors by service", "count": 3}', JSON),
    ("/plain", b'{"question": "x"}', {"content-type": "application/json; charset=utf-8"}),
    ("/plain", b'{"question": ""}', JSON),  # too short: 422
    ("/plain", b'{"question": "x", "count": "many"}', JSON),  # wrong type: 422
    ("/plain", b'{"count": 2}', JSON),  # missing field: 422
    ("/plain", b'{"question": ', JSON),  # not JSON: 422
    ("/plain", b"", JSON),  # no body: 422
    ("/plain", b'{"question": "x"}', {"content-type": "text/plain"}),  # not JSON by type
    ("/plain", b'{"question": "x"}', {}),  # no content type
    ("/plain", b'["question"]', JSON),  # not an object
    ("/accepted", b'{"question": "x"}', JSON),
    ("/unannotated", b'{"question": "x", "count": 2}', JSON),
    ("/model", b'{"question": "x"}', JSON),
    ("/own-response", b'{"question": "x"}', JSON),
    ("/with-dependency", b'{"question": "x"}', JSON),
    ("/with-query?page=3", b'{"question": "x"}', JSON),
]


def _answers(app: FastAPI) -> list[tuple[int, str, bytes]]:
    async def run() -> list[tuple[int, str, bytes]]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            out = []
            for path, body, headers in REQUESTS:
                resp = await client.post(path, content=body, headers=headers)
                out.append((resp.status_code, resp.headers.get("content-type", ""), resp.content))
            return out

    return asyncio.run(run())


def test_the_same_answers_as_fastapi() -> None:
    fastapi, kit = _answers(_app(None)), _answers(_app(JSONBodyRoute))
    for request, theirs, ours in zip(REQUESTS, fastapi, kit, strict=True):
        assert ours == theirs, request
    statuses = [status for status, _, _ in kit]
    assert statuses.count(200) == 6 and statuses.count(422) == 8
    assert {202, 201} <= set(statuses)


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
    ],
)
def test_only_a_lone_json_body_takes_the_short_path(path: str, short: bool) -> None:
    app = _app(JSONBodyRoute)
    route = next(r for r in app.routes if getattr(r, "path", None) == path)
    assert (_only_body_model(route) is not None) is short  # type: ignore[arg-type]


def test_the_services_routes_take_it(route_settings: Settings) -> None:
    """The hops a question makes between services are such routes."""
    from stack.services import external_api, processing, query, queue, validation

    for module, path in (
        (validation, "/validate"),
        (processing, "/execute"),
        (queue, "/jobs"),
        (query, "/generate"),
        (external_api, "/v1/chat/completions"),
    ):
        app = module.create_app(route_settings)
        route = next(r for r in app.routes if getattr(r, "path", None) == path)
        assert isinstance(route, JSONBodyRoute), path
        assert _only_body_model(route) is not None, path
