"""Helpers for the job stream shared by queue-service and queue-worker."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from stack.common.redis import DEAD_STREAM, GROUP, STREAM


async def ensure_group(redis: aioredis.Redis) -> None:
    """Create the consumer group (and the stream) if missing; id 0 so nothing is skipped."""
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def stream_stats(redis: aioredis.Redis) -> dict[str, int]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(STREAM)
        pipe.xlen(DEAD_STREAM)
        pipe.xinfo_groups(STREAM)
        length, dead, groups = await pipe.execute(raise_on_error=False)
    pending = lag = 0
    if isinstance(groups, list):
        for group in groups:
            if group.get("name") == GROUP:
                pending = int(group.get("pending") or 0)
                lag = int(group.get("lag") or 0)
    return {
        "length": int(length) if isinstance(length, int) else 0,
        "dead": int(dead) if isinstance(dead, int) else 0,
        "pending": pending,
        "lag": lag,
    }
