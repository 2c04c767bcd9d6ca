"""query-service in-process: question → DataPrime, cached in Redis."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from stack.common.redis import CACHE_PREFIX
from stack.common.settings import Settings
from stack.services.query import create_app
from tests.unit.inprocess import client_for


def test_question_answers_query_text_and_is_cached(route_settings: Settings) -> None:
    async def scenario() -> None:
        redis = aioredis.Redis.from_url(route_settings.redis_url, decode_responses=True)
        async with client_for(create_app(route_settings, redis=redis)) as c:
            ask = {"question": "errors from checkout by status code", "engine": "rules"}
            first = await c.post("/generate", json=ask)
            assert first.status_code == 200, first.text
            body = first.json()
            assert body["query"].startswith("source ") and body["intent"]
            assert body["source"] == "rules" and body["cached"] is False
            again = await c.post("/generate", json=ask)
            assert again.json()["cached"] is True and again.json()["query"] == body["query"]
            assert len([k async for k in redis.scan_iter(match=f"{CACHE_PREFIX}query:*")]) == 1
        # the client was passed in: the app's shutdown left it open for its owner
        assert await redis.ping()
        await redis.aclose()

    asyncio.run(scenario())


def test_blank_or_too_long_question_is_refused(route_settings: Settings) -> None:
    async def scenario() -> None:
        settings = route_settings.model_copy(update={"question_max_chars": 20})
        async with client_for(create_app(settings)) as c:
            blank = await c.post("/generate", json={"question": "   ", "engine": "rules"})
            assert blank.status_code == 422
            assert blank.json()["errors"] == [{"field": "question", "reason": "must not be blank"}]
            long = await c.post("/generate", json={"question": "x" * 21, "engine": "rules"})
            assert long.status_code == 422
            assert long.json()["errors"][0]["field"] == "question"
            assert "20" in long.json()["errors"][0]["reason"]

    asyncio.run(scenario())
