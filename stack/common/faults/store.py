"""Fault state in Redis: `fault:<id>` keys that expire with the fault, plus a change counter.

Every change is also published on CHANNEL, so services reload the set the moment it changes
instead of polling it several times a second (idle CPU on a t3.small, issue 19). They still
read the counter now and then (FAULT_POLL_SECONDS) in case a message was lost while their
subscription reconnected; expiry is enforced locally from `expires_at`, so a fault stops the
moment it expires.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

import redis.asyncio as aioredis

from stack.common.faults import timeline
from stack.common.faults.model import Fault
from stack.common.redis import FAULT_PREFIX, Entry

VERSION_KEY = f"{FAULT_PREFIX}version"
INDEX_KEY = f"{FAULT_PREFIX}index"
CHANNEL = f"{FAULT_PREFIX}changed"


def _key(fault_id: str) -> str:
    return f"{FAULT_PREFIX}item:{fault_id}"


async def add_fault(redis: aioredis.Redis, fault: Fault) -> None:
    ttl_ms = max(1, int(fault.remaining() * 1000))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_key(fault.id), fault.model_dump_json(), px=ttl_ms)
        pipe.sadd(INDEX_KEY, fault.id)
        pipe.incr(VERSION_KEY)
        pipe.publish(CHANNEL, fault.id)
        timeline.record(pipe, timeline.start_fields(fault))
        await pipe.execute()


async def list_faults(redis: aioredis.Redis) -> list[Fault]:
    ids = sorted(await cast("Awaitable[set[str]]", redis.smembers(INDEX_KEY)))
    if not ids:
        return []
    raw = await redis.mget([_key(i) for i in ids])
    faults, gone = [], []
    for fault_id, value in zip(ids, raw, strict=True):
        if value is None:
            gone.append(fault_id)
        else:
            fault = Fault.model_validate_json(value)
            if fault.active():
                faults.append(fault)
    if gone:  # expired keys: keep the index tidy
        # redis-py < 8 types asyncio commands `Awaitable[X] | X`, 8 `Awaitable[X]`: cast to what
        # checks under both (the reply is unused)
        await cast("Awaitable[object]", redis.srem(INDEX_KEY, *gone))
    return faults


async def remove_fault(redis: aioredis.Redis, fault_id: str) -> bool:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(_key(fault_id))
        pipe.srem(INDEX_KEY, fault_id)
        pipe.incr(VERSION_KEY)
        pipe.publish(CHANNEL, fault_id)
        deleted, *_ = await pipe.execute()
    if deleted:
        await redis.xadd(
            timeline.EVENTS_KEY,
            cast(Entry, timeline.clear_fields(fault_id)),
            maxlen=timeline.MAXLEN,
            approximate=True,
        )
    return bool(deleted)


async def clear_faults(redis: aioredis.Redis, *, created_by: str | None = None) -> int:
    faults = await list_faults(redis)
    doomed = [f.id for f in faults if created_by is None or f.created_by == created_by]
    ids = (
        set(await cast("Awaitable[set[str]]", redis.smembers(INDEX_KEY)))
        if created_by is None
        else set(doomed)
    )
    async with redis.pipeline(transaction=True) as pipe:
        for fault_id in ids:
            pipe.delete(_key(fault_id))
            pipe.srem(INDEX_KEY, fault_id)
            timeline.record(pipe, timeline.clear_fields(fault_id))
        pipe.incr(VERSION_KEY)
        pipe.publish(CHANNEL, "*")
        await pipe.execute()
    return len(doomed)


async def version(redis: aioredis.Redis) -> str:
    return cast("str | None", await redis.get(VERSION_KEY)) or "0"


def bad_release_version(redis_url: str, service: str) -> str | None:
    """Synchronous read at process start: the release a `bad_release` fault makes us run."""
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=1)
    try:
        ids = cast("set[str]", client.smembers(INDEX_KEY))
        values = cast("list[str | None]", client.mget([_key(i) for i in ids])) if ids else []
        for raw in values:
            if raw:
                fault = Fault.model_validate_json(raw)
                if fault.kind == "bad_release" and fault.target == service and fault.active():
                    return str(fault.params["version"])
        return None
    finally:
        client.close()
