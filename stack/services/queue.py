"""queue-service: accepts jobs and XADDs them to the Redis Stream with their trace context.

The PRODUCER span is current when the context is injected into the entry, so the worker's
CONSUMER span becomes its child and one trace covers the hop through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry.metrics import Observation
from pydantic import BaseModel, Field

from stack.common.problems import Problem
from stack.common.redis import DEAD_STREAM, GROUP, JOB_PREFIX, STREAM, Entry, Hash, unlink_matching
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.common.streams import ensure_group, stream_stats
from stack.common.telemetry import SpanKind, inject_context, meter, tracer, untraced

log = logging.getLogger("stack.queue")


class JobRequest(BaseModel):
    job_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    question: str = Field(max_length=10_000)
    query: str = Field(max_length=20_000)
    intent: str = Field(max_length=100)
    attendee: str | None = Field(None, max_length=100)
    session: str | None = Field(None, max_length=100)


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The queue service's app (run by `python -m stack.run queue-service`)."""
    service = Service(ServiceName.QUEUE, uses_redis=True, settings=settings, redis=redis)
    app = service.app
    cfg = service.settings
    assert service.redis is not None
    client: aioredis.Redis = service.redis

    _meter = meter("stack.queue")
    jobs_enqueued = _meter.create_counter("workshop.jobs.enqueued", description="Jobs accepted")
    last_stats: dict[str, int] = {"length": 0, "pending": 0, "dead": 0, "lag": 0}

    def _observe(name: str) -> Callable[[object], list[Observation]]:
        def callback(_options: object) -> list[Observation]:
            return [Observation(last_stats[name], {"messaging.destination.name": STREAM})]

        return callback

    _meter.create_observable_gauge(
        "workshop.stream.length", [_observe("length")], description="Entries in the job stream"
    )
    _meter.create_observable_gauge(
        "workshop.stream.pending",
        [_observe("pending")],
        description="Delivered but unacknowledged jobs",
    )
    _meter.create_observable_gauge(
        "workshop.stream.dead", [_observe("dead")], description="Dead-lettered jobs"
    )

    @service.on_startup
    async def _startup() -> None:
        with untraced():
            await ensure_group(client)
        service.spawn(_refresh_stats(), "stream-stats")

    async def _refresh_stats() -> None:
        while True:
            try:
                with untraced():
                    last_stats.update(await stream_stats(client))
            except Exception:
                pass
            await asyncio.sleep(5)

    @app.post("/jobs", status_code=202)
    async def enqueue(body: JobRequest) -> dict[str, Any]:
        now = time.time()
        with tracer("stack.queue").start_as_current_span(
            f"send {STREAM}", kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "redis")
            span.set_attribute("messaging.destination.name", STREAM)
            span.set_attribute("messaging.operation.type", "send")
            span.set_attribute("messaging.operation.name", "XADD")
            span.set_attribute("messaging.message.conversation_id", body.job_id)
            carrier = inject_context({})
            fields = {
                "job_id": body.job_id,
                "payload": orjson.dumps(body.model_dump()).decode(),
                "enqueued_at": repr(now),
                **carrier,
            }
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(
                    f"{JOB_PREFIX}{body.job_id}",
                    mapping={
                        "status": "queued",
                        "created_at": repr(now),
                        "question": body.question,
                        "query": body.query,
                        "intent": body.intent,
                    },
                )
                pipe.expire(f"{JOB_PREFIX}{body.job_id}", cfg.job_status_ttl_seconds)
                pipe.xadd(STREAM, cast(Entry, fields), maxlen=cfg.stream_maxlen, approximate=True)
                _, _, message_id = await pipe.execute()
            span.set_attribute("messaging.message.id", message_id)
            log.info(
                "job enqueued", extra={"fields": {"job_id": body.job_id, "message_id": message_id}}
            )
        jobs_enqueued.add(1)
        return {"job_id": body.job_id, "message_id": message_id, "status": "queued"}

    @app.get("/jobs/{job_id}")
    async def job_status(job_id: str) -> dict[str, Any]:
        status = await cast("Awaitable[Hash]", client.hgetall(f"{JOB_PREFIX}{job_id}"))
        if not status:
            raise Problem(404, f"no job `{job_id}`", service=service.name.value)
        return {"job_id": job_id, **status}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        figures = await stream_stats(client)
        last_stats.update(figures)
        return {"stream": STREAM, "group": GROUP, "dead_stream": DEAD_STREAM, **figures}

    @app.post("/admin/reset")
    async def reset() -> dict[str, Any]:
        """Empty the stream, dead letters and job statuses; recreate the consumer group."""
        removed = await unlink_matching(client, f"{JOB_PREFIX}*")
        await client.delete(STREAM, DEAD_STREAM)
        await ensure_group(client)
        return {"reset": True, "job_statuses_removed": removed}

    return app
