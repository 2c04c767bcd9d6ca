"""One asyncio Redis client per process, resilient to a Redis restart (retries with backoff)."""

from __future__ import annotations

import asyncio
import builtins
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
    """A connection that can be slowed by the `redis_latency` fault, and sends without a task.

    The delay happens inside the command (and so inside its client span), exactly where a
    slow Redis would show up.
    """

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if _delay_hook is not None and (delay := _delay_hook()):
            await asyncio.sleep(delay)
        if type(command) is not list or not self.is_connected:
            await super().send_packed_command(command, check_health)
            return
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]
        await self._write(command)

    async def _write(self, command: list[bytes]) -> None:
        """Send a packed command; wait only if the socket did not take it whole.

        redis-py runs every send under `asyncio.wait_for`, a task and a timer a command, to
        bound a write that blocks; about 13 µs of a 70 µs round trip here (issue 19). A command
        of a few hundred bytes never blocks: the socket takes it at once. Only when some is
        left in the transport's buffer is there something to wait for, under the same timeout
        and with the same errors as redis-py's.
        """
        writer = self._writer
        if writer is None:  # the health check found the connection dead and closed it
            await super().send_packed_command(command, check_health=False)
            return
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                await asyncio.wait_for(writer.drain(), self.socket_timeout)
        except builtins.TimeoutError:  # asyncio's; the name here is redis-py's
            await self.disconnect(nowait=True)
            raise TimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            raise ConnectionError(f"Error while writing to socket. {exc}.") from exc
        except BaseException:
            await self.disconnect(nowait=True)
            raise


async def unlink_matching(client: aioredis.Redis, pattern: str, *, page: int = 1000) -> int:
    """UNLINK every key matching `pattern`, a page of keys per call: one round trip and one
    span per `page` keys, not per key. A reset after a room's day removes tens of thousands
    of job keys; one UNLINK each made a trace of thousands of spans and took seconds."""
    removed, keys = 0, []
    async for key in client.scan_iter(match=pattern, count=page):
        keys.append(key)
        if len(keys) == page:
            removed += await client.unlink(*keys)
            keys = []
    if keys:
        removed += await client.unlink(*keys)
    return removed


def create_redis(
    settings: Settings, *, socket_timeout: float = 5.0, retries: int = 8
) -> aioredis.Redis:
    """The process's client. `socket_timeout` bounds a reply's wait, so a blocking command
    needs one longer than its BLOCK; `retries=0` leaves every failure to the caller (see
    stack.services.worker: a retried blocking read would run past the caller's own checks)."""
    # TracedRedis: CLIENT spans once the service's telemetry is on (stack.common.redis_tracing).
    return TracedRedis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=15,
        # A graceful Redis restart takes ~1 s; ride it out instead of failing requests.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=retries),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        max_connections=200,
        connection_class=FaultableConnection,
    )
