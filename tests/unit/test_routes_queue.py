"""queue-service in-process: a job lands on the Redis stream with its trace context."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import redis.asyncio as aioredis
from opentelemetry import baggage, context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from stack.common import redis_tracing
from stack.common.redis import GROUP, JOB_PREFIX, STREAM
from stack.common.settings import Settings
from stack.services.queue import create_app
from tests.unit.inprocess import client_for

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


def _job(**extra: object) -> dict[str, object]:
    return {
        "job_id": uuid.uuid4().hex,
        "question": "errors from checkout",
        "query": "source logs | filter $l.severity == ERROR",
        "intent": "errors",
        "attendee": "alice",
        **extra,
    }


def test_enqueue_lands_on_the_stream_with_trace_context(route_settings: Settings) -> None:
    async def scenario() -> None:
        redis = aioredis.Redis.from_url(route_settings.redis_url, decode_responses=True)
        # The caller's trace (as the gateway's request span would be) and baggage.
        parent = SpanContext(TRACE_ID, 0x00F067AA0BA902B7, True, TraceFlags(TraceFlags.SAMPLED))
        ctx = trace.set_span_in_context(NonRecordingSpan(parent))
        token = context.attach(baggage.set_baggage("workshop.attendee", "alice", ctx))
        try:
            async with client_for(create_app(route_settings, redis=redis)) as c:
                job = _job()
                r = await c.post("/jobs", json=job)
                assert r.status_code == 202, r.text
                accepted = r.json()
                assert accepted["job_id"] == job["job_id"] and accepted["status"] == "queued"
                entries = await redis.xrange(STREAM)
                assert [e[0] for e in entries] == [accepted["message_id"]]
                fields = entries[0][1]
                assert fields["job_id"] == job["job_id"]
                assert orjson.loads(fields["payload"])["query"] == job["query"]
                assert fields["traceparent"].split("-")[1] == f"{TRACE_ID:032x}"
                assert "workshop.attendee=alice" in fields["baggage"]
                # the consumer group exists (created at startup) and the status is readable
                assert GROUP in [g["name"] for g in await redis.xinfo_groups(STREAM)]
                status = await c.get(f"/jobs/{job['job_id']}")
                assert status.status_code == 200 and status.json()["status"] == "queued"
                assert await redis.ttl(f"{JOB_PREFIX}{job['job_id']}") > 0
                stats = await c.get("/stats")
                assert stats.json()["stream"] == STREAM and stats.json()["length"] == 1
        finally:
            context.detach(token)
            await redis.aclose()

    asyncio.run(scenario())


def test_bad_job_id_and_unknown_job_are_refused(route_settings: Settings) -> None:
    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            bad = await c.post("/jobs", json=_job(job_id="not-a-hex-id"))
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["field"] == "job_id"
            missing = await c.get(f"/jobs/{uuid.uuid4().hex}")
            assert missing.status_code == 404
            assert missing.json()["service"] == "queue-service"

    asyncio.run(scenario())


def test_reset_removes_every_job_status_in_a_few_commands(
    route_settings: Settings, traced_spans
) -> None:
    """A reset after a room's day: thousands of job statuses go in one UNLINK per thousand
    keys, so its trace stays readable (it was one span per key), and nothing else goes."""

    async def scenario() -> None:
        seed = aioredis.Redis.from_url(route_settings.redis_url, decode_responses=True)
        try:
            async with seed.pipeline(transaction=False) as pipe:
                for i in range(2500):
                    pipe.hset(f"{JOB_PREFIX}{i:032x}", mapping={"status": "done"})
                pipe.set("cache:keep-me", "1")
                await pipe.execute()
            async with client_for(create_app(route_settings)) as c:
                r = await c.post("/admin/reset")
                assert r.status_code == 200, r.text
                assert r.json()["job_statuses_removed"] == 2500
            assert [k async for k in seed.scan_iter(match=f"{JOB_PREFIX}*")] == []
            assert await seed.get("cache:keep-me") == "1"
        finally:
            await seed.aclose()

    redis_tracing.enable(trace.get_tracer_provider())  # the service's Redis spans, kept
    try:
        asyncio.run(scenario())
    finally:
        redis_tracing.disable()
    names = [s.name for s in traced_spans.get_finished_spans()]
    assert names.count("UNLINK") == 3, names.count("UNLINK")  # 1000 + 1000 + 500 keys
    assert len(names) < 50, len(names)
