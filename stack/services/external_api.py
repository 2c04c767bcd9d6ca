"""external-api-service: a stand-in LLM provider with a chat-completions-shaped endpoint.

Deterministic completions (the rule engine plays the model), token counts, a latency model
of base + per-token, and 429 + Retry-After when its own rate limit is exceeded or the
`llm_rate_limit` fault fires. With LLM_PROVIDER_BASE_URL and LLM_PROVIDER_API_KEY set it
forwards to that OpenAI-compatible provider instead.
"""

# No `from __future__ import annotations`: the routes are declared inside `create_app` with a
# request model built there (its default model comes from the settings), and FastAPI resolves
# string annotations only in the module's globals.

import asyncio
import secrets
import time
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry import trace
from pydantic import BaseModel, Field

from stack.common.faults import mark_span
from stack.common.http import record_response
from stack.common.problems import Problem
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.dataprime import generate

GEN_AI_SYSTEM = "workshop-stand-in"


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class TokenBucket:
    """The provider's own rate limit: `rate` requests/s with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when allowed, else the seconds until a token is available."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def count_tokens(text: str) -> int:
    # ~4 characters per token, the usual rule of thumb for English text.
    return max(1, (len(text) + 3) // 4)


def rate_limited(retry_after: int, reason: str) -> Problem:
    return Problem(
        429,
        reason,
        headers={"retry-after": str(retry_after)},
        slug="rate-limited",
        service=ServiceName.EXTERNAL_API.value,
    )


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The stand-in provider's app (run by `python -m stack.run external-api-service`)."""
    service = Service(ServiceName.EXTERNAL_API, settings=settings, redis=redis)
    app = service.app
    cfg = service.settings
    bucket = TokenBucket(cfg.llm_rate_limit_rps)

    class ChatRequest(BaseModel):
        model: str = Field(cfg.llm_model, max_length=100)
        messages: list[Message] = Field(min_length=1, max_length=50)
        max_tokens: int = Field(256, ge=1, le=4096)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> dict[str, Any]:
        span = trace.get_current_span()
        span.set_attribute("gen_ai.system", GEN_AI_SYSTEM)
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", body.model)
        if fault := service.faults.firing("llm_rate_limit"):
            mark_span(fault)
            raise rate_limited(
                fault.params["retry_after_s"], "rate limit exceeded (injected fault)"
            )
        wait = bucket.take()
        if wait:
            raise rate_limited(max(1, round(wait)), "rate limit exceeded")

        if cfg.llm_provider_base_url and cfg.llm_provider_api_key.get_secret_value():
            return await _forward(body)

        question = next((m.content for m in reversed(body.messages) if m.role == "user"), "")
        generated = generate(question)
        content = orjson.dumps(
            {
                "query": generated.query,
                "intent": generated.intent,
                "explanation": generated.explanation,
                "confidence": generated.confidence,
            }
        ).decode()
        prompt_tokens = sum(count_tokens(m.content) for m in body.messages)
        completion_tokens = min(body.max_tokens, count_tokens(content))
        await asyncio.sleep(
            (cfg.llm_base_ms + cfg.llm_per_token_ms * (prompt_tokens + completion_tokens)) / 1000
        )
        span.set_attribute("gen_ai.response.model", body.model)
        span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", completion_tokens)
        return {
            "id": f"chatcmpl-{secrets.token_hex(8)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def _forward(body: ChatRequest) -> dict[str, Any]:
        """Pass-through to a real OpenAI-compatible provider (only when configured)."""
        url = cfg.llm_provider_base_url.rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {cfg.llm_provider_api_key.get_secret_value()}"}
        # A real provider is outside the machine: its hop is a CLIENT span of this service.
        with service.http.client_span("POST", url, headers) as call:
            async with service.http.session.post(
                url, json=body.model_dump(), headers=headers
            ) as resp:
                record_response(call, resp.status)
                payload = await resp.json(content_type=None)
                if resp.status == 429:
                    retry_after = int(resp.headers.get("retry-after", "1"))
                    raise rate_limited(retry_after, "provider rate limit")
                if resp.status >= 400:
                    raise Problem(
                        502, f"LLM provider answered HTTP {resp.status}", service="llm-provider"
                    )
        usage = payload.get("usage", {})
        span = trace.get_current_span()
        span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens", 0)))
        span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens", 0)))
        return payload

    return app
