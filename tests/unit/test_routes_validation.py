"""validation-service in-process: its routes as a user of the API sees them."""

from __future__ import annotations

import asyncio

from stack.common.settings import Settings
from stack.services.validation import create_app
from tests.unit.inprocess import client_for


def test_valid_query_answers_its_fields(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            r = await c.post("/validate", json={"query": "source logs | limit 5"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["valid"] is True and body["errors"] == []
            assert {"warnings", "normalized"} <= body.keys()
            health = await c.get("/health")
            assert health.json()["service"] == "validation-service"
            assert (await c.get("/ready")).status_code == 200

    asyncio.run(scenario())


def test_invalid_query_names_line_and_column(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            r = await c.post("/validate", json={"query": "source logs | fliter $d.x == 1"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["valid"] is False
            first = body["errors"][0]
            assert first["line"] == 1 and first["column"] == 15
            assert first["message"]

    asyncio.run(scenario())


def test_nul_byte_is_refused_naming_query(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            r = await c.post("/validate", json={"query": "source logs\x00 | limit 1"})
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["errors"][0]["field"] == "query"
            assert body["detail"].startswith("query:")
            empty = await c.post("/validate", json={"query": ""})
            assert empty.status_code == 422
            # A body field named `query` is `query` (it used to be reported as "body", its
            # name taken for the query string's location).
            assert empty.json()["errors"] == [
                {"field": "query", "reason": "String should have at least 1 character"}
            ]

    asyncio.run(scenario())


def test_long_queries_get_the_same_answers_off_the_event_loop(route_settings: Settings) -> None:
    """Short queries are checked inline, longer ones in the threadpool: the answers agree."""
    from stack.services.validation import INLINE_MAX_CHARS

    long_ok = "source logs" + " | filter $d.x > 1" * (INLINE_MAX_CHARS // 18 + 1)
    long_bad = long_ok + " | fliter $d.y == 2"
    assert len(long_ok) > INLINE_MAX_CHARS

    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            ok = await c.post("/validate", json={"query": long_ok})
            bad = await c.post("/validate", json={"query": long_bad})
            nul = await c.post("/validate", json={"query": long_ok + "\x00"})
        assert ok.status_code == 200 and ok.json()["valid"] is True, ok.text
        assert bad.json()["valid"] is False
        assert bad.json()["errors"][0]["column"] == len(long_ok) + 4
        assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "query"

    asyncio.run(scenario())
