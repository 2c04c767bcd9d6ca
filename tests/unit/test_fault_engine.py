"""The fault engine against a real redis-server: a fault that arrives over pub/sub while the
safety poller sleeps its long interval still ends at its own expiry, not at the poller's next
wake (a process-level fault such as slow_db would otherwise outlive its TTL by up to
FAULT_POLL_SECONDS)."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from stack.common.faults import store
from stack.common.faults.engine import FaultEngine
from stack.common.faults.model import Fault, FaultSpec
from stack.common.settings import ServiceName


def test_a_fault_that_arrives_mid_sleep_ends_at_its_expiry(routes_redis_url: str) -> None:
    changes: list[tuple[float, list[str]]] = []

    async def scenario() -> None:
        redis = aioredis.Redis.from_url(routes_redis_url, decode_responses=True)
        await redis.flushdb()
        engine = FaultEngine(ServiceName.STORAGE, redis, poll_seconds=60)
        engine.on_change(lambda faults: changes.append((time.time(), [f.id for f in faults])))
        await engine.start()
        try:
            await asyncio.sleep(0.3)  # the poller is asleep for 60 s
            spec = FaultSpec(
                kind="slow_db", target="storage-service", params={"lock_ms": 10}, ttl_seconds=2
            )
            fault = Fault.create(spec)
            await store.add_fault(redis, fault)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not (changes and changes[-1][1] == []):
                await asyncio.sleep(0.05)
        finally:
            await engine.stop()
            await redis.aclose()
        assert [ids for _t, ids in changes] == [[fault.id], []]
        ended_at = changes[-1][0]
        assert ended_at - fault.expires_at < 1.0, "the fault outlived its TTL"

    asyncio.run(scenario())
