"""external-api-service in-process: the stand-in provider's chat completions."""

from __future__ import annotations

import asyncio

import orjson
from pydantic import SecretStr

from stack.common.settings import Settings
from stack.services.external_api import create_app
from tests.unit.inprocess import client_for, free_port


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


def test_a_real_provider_is_called_through_a_client_span(
    route_settings: Settings, traced_spans
) -> None:
    """With LLM_PROVIDER_BASE_URL and its key set, completions come from that provider (here a
    loopback stand-in following OpenAI's contract: 200 with a completion, 429 with Retry-After
    and an error object). Its hop is a CLIENT span with the answer's status, and a 429 reaches
    the caller as a 429 with Retry-After (query-service's retry depends on it)."""
    from aiohttp import web
    from opentelemetry.trace import SpanKind, StatusCode

    seen: list[dict[str, str]] = []

    async def provider(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if len(seen) > 1:
            error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
            return web.json_response({"error": error}, status=429, headers={"retry-after": "3"})
        content = orjson.dumps({"query": "source logs | limit 10", "intent": "search"}).decode()
        message = {"role": "assistant", "content": content}
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "gpt-test",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
            }
        )

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", provider)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        settings = route_settings.model_copy(
            update={
                "llm_provider_base_url": f"http://127.0.0.1:{port}/v1",
                "llm_provider_api_key": SecretStr("sk-test-not-a-key"),
            }
        )
        body = {"messages": [{"role": "user", "content": "errors from checkout"}]}
        try:
            async with client_for(create_app(settings)) as c:
                ok = await c.post("/v1/chat/completions", json=body)
                assert ok.status_code == 200, ok.text
                assert ok.json()["usage"]["total_tokens"] == 17
                limited = await c.post("/v1/chat/completions", json=body)
                assert limited.status_code == 429, limited.text
                assert limited.headers["retry-after"] == "3"
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert seen[0]["Authorization"] == "Bearer sk-test-not-a-key"
    calls = [s for s in traced_spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert [c.attributes["http.response.status_code"] for c in calls] == [200, 429]
    assert calls[0].attributes["url.full"].endswith("/v1/chat/completions")
    assert calls[0].attributes["server.address"] == "127.0.0.1"
    assert calls[1].status.status_code == StatusCode.ERROR
    assert calls[1].attributes["error.type"] == "429"
    # the provider sees this hop's span as the parent
    assert seen[0]["traceparent"].split("-")[2] == format(calls[0].context.span_id, "016x")
