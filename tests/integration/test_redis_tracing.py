"""The kit's Redis spans (stack/common/redis_tracing.py) against the package they replace:
opentelemetry-instrumentation-redis. The same commands and pipelines against a real
redis-server give spans with the same names, kinds, attributes and status, both ways."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from redis.exceptions import ResponseError, WatchError

from stack.common import redis_tracing
from stack.common.telemetry import untraced

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


async def _workload(client: aioredis.Redis) -> None:
    """What the services send: single commands, a pipeline, an error reply, a lost WATCH, and
    a background read that must stay untraced."""
    await client.hset("job:1", mapping={"status": "queued", "question": "how many errors?"})
    await client.expire("job:1", 60)
    await client.hgetall("job:1")
    await client.set("cache:q", "source logs | limit 10", ex=300)
    await client.get("cache:q")
    pipe = client.pipeline(transaction=False)
    pipe.hset("job:2", mapping={"status": "queued"})
    pipe.expire("job:2", 60)
    pipe.xadd("stream:jobs", {"job_id": "2"})
    await pipe.execute()
    with pytest.raises(ResponseError):
        await client.incr("job:1")  # WRONGTYPE: an error reply
    async with client.pipeline(transaction=True) as watched:
        await watched.watch("cache:q")
        await client.set("cache:q", "changed")  # someone else writes: the WATCH is lost
        watched.multi()
        watched.get("cache:q")
        with pytest.raises(WatchError):
            await watched.execute()
    with untraced():
        await client.get("cache:q")


def _spans(make_client: Any, instrument: Any, uninstrument: Any) -> list[dict[str, Any]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(provider)
    try:

        async def run() -> None:
            client = make_client()
            try:
                await _workload(client)
            finally:
                await client.aclose()

        asyncio.run(run())
    finally:
        uninstrument()
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "attributes": dict(s.attributes or {}),
            "status": s.status.status_code,
            "events": [e.name for e in s.events],
        }
        for s in memory.get_finished_spans()
    ]


def test_spans_match_the_instrumentation_package(redis_url, monkeypatch) -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # The kit writes the stable HTTP and the duplicated database conventions: the package
    # does so under this opt-in.
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database/dup")
    package = RedisInstrumentor()
    theirs = _spans(
        lambda: aioredis.Redis.from_url(redis_url, decode_responses=True),
        lambda provider: package.instrument(tracer_provider=provider),
        package.uninstrument,
    )
    ours = _spans(
        lambda: redis_tracing.TracedRedis.from_url(redis_url, decode_responses=True),
        redis_tracing.enable,
        redis_tracing.disable,
    )
    assert ours == theirs
    # The MULTI pipeline is named after its queued command, as the package names it.
    names = ["HSET", "EXPIRE", "HGETALL", "SET", "GET", "HSET EXPIRE XADD", "INCRBY", "WATCH"]
    assert [s["name"] for s in ours] == [*names, "SET", "GET"]
    failed = next(s for s in ours if s["name"] == "INCRBY")
    assert failed["status"] is StatusCode.ERROR and failed["events"] == ["exception"]
    pipeline = next(s for s in ours if s["name"] == "HSET EXPIRE XADD")
    assert pipeline["attributes"]["db.query.text"] == "HSET ? ? ?\nEXPIRE ? ?\nXADD ? ? ? ?"
    assert pipeline["attributes"]["db.redis.pipeline_length"] == 3


def test_no_spans_until_enabled(redis_url) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    redis_tracing.disable()

    async def run() -> None:
        client = redis_tracing.TracedRedis.from_url(redis_url, decode_responses=True)
        await client.set("k", "v")
        await client.aclose()

    asyncio.run(run())
    assert memory.get_finished_spans() == ()


def test_the_baseline_arm_gets_the_packages_spans_once(redis_url, monkeypatch) -> None:
    """CLIENT_SPANS=packages (the budget bench's baseline arm): the services' TracedRedis then
    gets its spans from the package alone, one per command, never one from each."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    from stack.common.telemetry import instrument_clients

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    redis_tracing.disable()
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database/dup")
    instrument_clients(provider, "packages")
    try:

        async def run() -> None:
            client = redis_tracing.TracedRedis.from_url(redis_url, decode_responses=True)
            await client.set("k", "v")
            pipe = client.pipeline(transaction=False)
            pipe.get("k")
            pipe.expire("k", 5)
            await pipe.execute()
            await client.aclose()

        asyncio.run(run())
    finally:
        RedisInstrumentor().uninstrument()
        AioHttpClientInstrumentor().uninstrument()
    spans = memory.get_finished_spans()
    assert [s.name for s in spans] == ["SET", "GET EXPIRE"]
    assert {s.instrumentation_scope.name for s in spans} == {"opentelemetry.instrumentation.redis"}


def test_the_baseline_arm_names_its_missing_packages(monkeypatch) -> None:
    """In the services' image the packages are not installed: a clear error naming the fix."""
    import sys

    from stack.common.telemetry import instrument_clients

    redis_tracing.disable()
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.redis", None)
    with pytest.raises(RuntimeError, match=r"CLIENT_SPANS=packages needs .*dev extra"):
        instrument_clients(TracerProvider(), "packages")
    assert redis_tracing._tracer is None
