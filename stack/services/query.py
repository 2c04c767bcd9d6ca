"""query-service: plain language → DataPrime, cached in Redis by the normalised question.

QUERY_ENGINE=llm (default) asks the LLM provider (external-api-service) and retries its 429s,
honouring Retry-After; when the retries run out it falls back to the rule engine, so a rate
limited provider makes answers slower, not wrong. QUERY_ENGINE=rules skips the provider.
"""

# No `from __future__ import annotations`: the routes are declared inside `create_app` with a
# request model built there (its length limit comes from the settings), and FastAPI resolves
# string annotations only in the module's globals.

import asyncio
import hashlib
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry import trace
from pydantic import BaseModel, Field

from stack.common.faults import mark_span
from stack.common.problems import Problem
from stack.common.redis import CACHE_PREFIX
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import SpanKind, meter, record_error, tracer
from stack.dataprime import generate, normalize_question

SYSTEM_PROMPT = (
    "You translate questions about logs and traces into one Coralogix DataPrime query. "
    'Answer with JSON: {"query", "intent", "explanation", "confidence"}.'
)


def cache_key(question: str) -> str:
    digest = hashlib.sha1(normalize_question(question).encode()).hexdigest()
    return f"{CACHE_PREFIX}query:{digest}"


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The query service's app (run by `python -m stack.run query-service`)."""
    service = Service(ServiceName.QUERY, uses_redis=True, settings=settings, redis=redis)
    app = service.app
    cfg = service.settings
    assert service.redis is not None
    cache: aioredis.Redis = service.redis

    _meter = meter("stack.query")
    cache_hits = _meter.create_counter("workshop.cache.hits", description="Query cache hits")
    cache_misses = _meter.create_counter("workshop.cache.misses", description="Query cache misses")
    llm_retries = _meter.create_counter(
        "workshop.llm.retries", description="LLM calls retried on 429"
    )

    class GenerateRequest(BaseModel):
        question: str = Field(min_length=1, max_length=cfg.question_max_chars)
        engine: Literal["llm", "rules"] | None = None

    async def ask_llm(question: str) -> dict[str, Any]:
        """One chat completion, with bounded retries on 429 that honour Retry-After."""
        span_name = f"chat {cfg.llm_model}"
        with tracer("stack.query").start_as_current_span(span_name, kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.system", "workshop-stand-in")
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", cfg.llm_model)
            body = {
                "model": cfg.llm_model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": question},
                ],
            }
            attempt = 0
            while True:
                attempt += 1
                try:
                    answer = await service.http.post(
                        ServiceName.EXTERNAL_API, "/v1/chat/completions", json=body
                    )
                    break
                except Problem as exc:
                    if exc.status != 429 or attempt > cfg.llm_max_retries:
                        record_error(span, exc)
                        raise
                    wait = min(
                        float(exc.headers.get("retry-after", "1")), cfg.llm_retry_cap_seconds
                    )
                    span.add_event(
                        "retry",
                        {
                            "retry.attempt": attempt,
                            "http.response.status_code": 429,
                            "retry.wait_s": wait,
                        },
                    )
                    llm_retries.add(1)
                    await asyncio.sleep(wait)
            usage = answer.get("usage", {})
            span.set_attribute("gen_ai.response.model", answer.get("model", cfg.llm_model))
            span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens", 0)))
            span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens", 0)))
            span.set_attribute("llm.attempts", attempt)
            content = answer["choices"][0]["message"]["content"]
            return orjson.loads(content)

    @app.post("/generate")
    async def generate_query(body: GenerateRequest) -> dict[str, Any]:
        question = body.question.strip()
        if not question:
            raise Problem(
                422,
                "`question`: must not be blank",
                errors=[{"field": "question", "reason": "must not be blank"}],
            )
        span = trace.get_current_span()
        key = cache_key(question)
        cached = await cache.get(key)
        if cached:
            cache_hits.add(1)
            span.set_attribute("cache.hit", True)
            result = orjson.loads(cached)
            result["cached"] = True
        else:
            cache_misses.add(1)
            span.set_attribute("cache.hit", False)
            result = await _generate(question, body.engine or cfg.query_engine)
            await cache.set(key, orjson.dumps(result), ex=cfg.cache_ttl_seconds or None)
            result["cached"] = False
        _check_release(result["intent"])
        span.set_attribute("dataprime.intent", result["intent"])
        return result

    async def _generate(question: str, engine: str) -> dict[str, Any]:
        if engine == "llm":
            try:
                answer = await ask_llm(question)
                return {
                    "query": answer["query"],
                    "intent": answer["intent"],
                    "confidence": float(answer.get("confidence", 0.8)),
                    "explanation": answer.get("explanation", ""),
                    "source": "llm",
                }
            except Problem as exc:
                if exc.status != 429:
                    raise
                trace.get_current_span().add_event("llm.fallback", {"reason": "rate limited"})
        generated = generate(question).to_dict()
        generated["source"] = "rules" if engine == "rules" else "rules-fallback"
        return generated

    def _check_release(intent: str) -> None:
        """The regression a `bad_release` fault ships: one intent breaks in the new version."""
        for fault in service.faults.active("bad_release"):
            if fault.params["intent"] == intent:
                mark_span(fault)
                raise Problem(
                    500,
                    f"query-service {service.version} cannot generate `{intent}` queries "
                    f"(regression, fault {fault.id})",
                    service=service.name.value,
                    slug="regression",
                )

    return app
