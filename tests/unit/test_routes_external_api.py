"""external-api-service in-process: the stand-in provider's chat completions."""

from __future__ import annotations

import asyncio

import orjson

from stack.common.settings import Settings
from stack.services.external_api import create_app
from tests.unit.inprocess import client_for


def test_chat_completion_answers_a_query_with_token_counts(route_settings: Settings) -> None:
    async def scenario() -> None:
        settings = route_settings.model_copy(update={"llm_model": "test-model-7"})
        async with client_for(create_app(settings)) as c:
            r = await c.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "errors from checkout"}]},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            # the model defaults to the configured one
            assert body["model"] == "test-model-7" and body["object"] == "chat.completion"
            answer = orjson.loads(body["choices"][0]["message"]["content"])
            assert answer["query"].startswith("source ") and answer["intent"]
            usage = body["usage"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
            empty = await c.post("/v1/chat/completions", json={"messages": []})
            assert empty.status_code == 422
            assert empty.json()["errors"][0]["field"] == "messages"

    asyncio.run(scenario())


def test_own_rate_limit_answers_429_with_retry_after(route_settings: Settings) -> None:
    async def scenario() -> None:
        settings = route_settings.model_copy(update={"llm_rate_limit_rps": 1.0})
        async with client_for(create_app(settings)) as c:
            body = {"messages": [{"role": "user", "content": "slow requests"}]}
            first = await c.post("/v1/chat/completions", json=body)
            second = await c.post("/v1/chat/completions", json=body)
            assert first.status_code == 200
            assert second.status_code == 429 and second.headers["retry-after"] == "1"
            assert second.json()["service"] == "external-api-service"

    asyncio.run(scenario())
