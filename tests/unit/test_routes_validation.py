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
            # (stack.common.problems drops "query" from the location as if it were the query
            # string's, so this field is reported as "body"; the reason still says what is wrong)
            assert "at least 1 character" in empty.json()["errors"][0]["reason"]

    asyncio.run(scenario())
