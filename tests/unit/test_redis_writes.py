"""The services' Redis connection sends a command without redis-py's per-command task and
timer, yet a large command still waits for the socket, and a Redis that stops reading still
ends in a timeout, not a hang (a real redis-server)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeout

from stack.common import redis as kit_redis
from stack.common.redis import FaultableConnection, create_redis
from stack.common.settings import Settings
from tests.helpers import redis_server
from tests.unit.inprocess import free_port


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(free_port(), tmp_path_factory.mktemp("redis")) as u:
        yield u


def _client(url: str, timeout: float = 5) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=timeout, connection_class=FaultableConnection
    )


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every asyncio.wait_for the connection module starts."""
    seen: list[Any] = []
    real = asyncio.wait_for

    async def counting(aw: Any, timeout: float | None) -> Any:
        seen.append(timeout)
        return await real(aw, timeout)

    monkeypatch.setattr(kit_redis.asyncio, "wait_for", counting)
    return seen


def test_services_use_the_connection(url: str) -> None:
    client = create_redis(Settings(redis_url=url))
    assert client.connection_pool.connection_class is FaultableConnection


def test_small_commands_go_out_without_waiting(url: str, waits: list[Any]) -> None:
    async def run() -> tuple[str | None, list[Any]]:
        client = _client(url)
        await client.hset("job:1", mapping={"status": "queued", "query": "source logs"})
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset("job:1", mapping={"status": "done"})
            pipe.expire("job:1", 60)
            await pipe.execute()
        status = await client.hget("job:1", "status")
        await client.aclose()
        return status, list(waits)

    status, seen = asyncio.run(run())
    assert status == "done"
    assert seen == []  # not one task a command


def test_a_large_command_waits_for_the_socket(url: str, waits: list[Any]) -> None:
    value = "x" * (48 << 20)  # more than loopback's socket buffers take at once

    async def run() -> int:
        client = _client(url)
        await client.set("big", value)
        length = await client.strlen("big")
        await client.delete("big")
        await client.aclose()
        return int(length)

    assert asyncio.run(run()) == len(value)
    assert waits == [5]  # drained, under the connection's own timeout


def test_a_redis_that_stops_reading_times_out(url: str) -> None:
    pid = int(_info(url)["process_id"])
    value = "y" * (48 << 20)

    async def run() -> float:
        client = _client(url, timeout=0.5)
        await client.ping()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        try:
            with pytest.raises(RedisTimeout, match="writing to socket"):
                await client.set("stuck", value)
            return time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
            await client.aclose()

    elapsed = asyncio.run(run())
    assert elapsed < 5
    asyncio.run(_ping(url))  # Redis goes on once it reads again


def _info(url: str) -> dict[str, Any]:
    import redis

    return dict(redis.Redis.from_url(url).info("server"))


async def _ping(url: str) -> None:
    client = _client(url)
    assert await client.ping()
    await client.aclose()
