"""One asyncio Redis client per process, resilient to a Redis restart (retries with backoff)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from redis.typing import EncodableT, FieldT

from stack.common.redis_tracing import TracedRedis
from stack.common.settings import Settings

# Key prefixes (docs/architecture.md): each role of Redis under its own prefix.
CACHE_PREFIX = "cache:"
SESSION_PREFIX = "session:"
JOB_PREFIX = "job:"
FAULT_PREFIX = "fault:"
STREAM = "stream:jobs"
DEAD_STREAM = "stream:jobs:dead"
GROUP = "workers"

# Types for mypy's sake, used only in annotations and casts. The client decodes every reply
# (decode_responses=True), so replies are `str`, never `bytes`: redis-py's stubs can't know
# that and say `bytes | str`. Redis-py before 8 also types an asyncio command as
# `Awaitable[X] | X`, so where that matters the call is cast (`cast("Awaitable[Hash]", ...)`),
# which is right under every redis-py the project allows.
Hash = dict[str, str]  # HGETALL, or one stream entry's fields
StreamEntries = list[tuple[str, Hash]]  # XRANGE: (id, fields)
# XREADGROUP entries (RESP2): fields are None for a pending entry trimmed away meanwhile.
PendingEntries = list[tuple[str, Hash | None]]
# What XADD / HSET accept: the stubs' `dict` is invariant, so a `dict[str, str]` is cast to it.
Entry = dict[FieldT, EncodableT]


# Set by the service factory: seconds of injected latency for the command being sent.
_delay_hook: Callable[[], float] | None = None


def set_delay_hook(hook: Callable[[], float] | None) -> None:
    global _delay_hook
    _delay_hook = hook


class FaultableConnection(Connection):
    """A connection that can be slowed by the `redis_latency` fault.

    The delay happens inside the command (and so inside its client span), exactly where a
    slow Redis would show up.
    """

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if _delay_hook is not None and (delay := _delay_hook()):
            await asyncio.sleep(delay)
        await super().send_packed_command(command, check_health)


def create_redis(settings: Settings) -> aioredis.Redis:
    # TracedRedis: CLIENT spans once the service's telemetry is on (stack.common.redis_tracing).
    return TracedRedis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=15,
        # A graceful Redis restart takes ~1 s; ride it out instead of failing requests.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=8),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        max_connections=200,
        connection_class=FaultableConnection,
    )
