"""The gateway's sessions (stack/gateway/sessions.py) against a real redis-server: a cookie
backed by a key with a sliding TTL, slid at most every TTL/60 (issue 19)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response

from stack.common.redis import SESSION_PREFIX
from stack.gateway.sessions import COOKIE, Sessions


def _request(sid: str | None) -> Request:
    headers = [(b"cookie", f"{COOKIE}={sid}".encode())] if sid else []
    return Request({"type": "http", "method": "POST", "path": "/api/queries", "headers": headers})


async def _ask(sessions: Sessions, sid: str | None) -> tuple[str, bool]:
    """The session a question gets, and whether the answer sets its cookie."""
    response = Response()
    got = await sessions.current(_request(sid), response)
    return got, COOKIE in response.headers.get("set-cookie", "")


@contextlib.asynccontextmanager
async def _redis(url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        yield r
    finally:
        await r.aclose()


async def _commands(r: aioredis.Redis) -> int:
    info: dict[str, Any] = await r.info("stats")
    return int(info["total_commands_processed"]) - 1  # the INFO itself counts


def test_a_session_is_slid_at_most_every_sixtieth_of_its_ttl(routes_redis_url: str) -> None:
    async def scenario() -> None:
        async with _redis(routes_redis_url) as r:
            sessions = Sessions(r, ttl=60)  # slid at most once a second
            sid, new = await _ask(sessions, None)
            assert new and 59 <= await r.ttl(f"{SESSION_PREFIX}{sid}") <= 60
            await r.expire(f"{SESSION_PREFIX}{sid}", 30)
            before = await _commands(r)
            assert await _ask(sessions, sid) == (sid, False)
            assert await _commands(r) - before == 1, "a recent session cost a Redis round trip"
            assert await r.ttl(f"{SESSION_PREFIX}{sid}") <= 30  # not slid yet
            await asyncio.sleep(1.1)
            assert await _ask(sessions, sid) == (sid, True)  # the cookie's Max-Age slides too
            assert 59 <= await r.ttl(f"{SESSION_PREFIX}{sid}") <= 60  # slid

    asyncio.run(scenario())


def test_every_request_slides_it_in_the_baseline_arm(routes_redis_url: str) -> None:
    async def scenario() -> None:
        async with _redis(routes_redis_url) as r:
            sessions = Sessions(r, ttl=3600, lazy=False)
            sid, _ = await _ask(sessions, None)
            before = await _commands(r)
            assert await _ask(sessions, sid) == (sid, True)
            assert await _commands(r) - before == 2  # EXPIRE + the INFO

    asyncio.run(scenario())


def test_after_a_reset_an_old_cookie_gets_a_new_session(routes_redis_url: str) -> None:
    async def scenario() -> None:
        async with _redis(routes_redis_url) as r:
            sessions = Sessions(r, ttl=3600)
            sid, _ = await _ask(sessions, None)
            await r.delete(f"{SESSION_PREFIX}{sid}")  # what the reset does to the keys...
            sessions.forget()  # ...and to the gateway's memory of them
            got, new = await _ask(sessions, sid)
            assert new and got != sid
            assert await r.exists(f"{SESSION_PREFIX}{got}")
            unknown, new = await _ask(sessions, "f" * 32)  # never issued, or expired
            assert new and unknown != "f" * 32

    asyncio.run(scenario())


def test_the_memory_is_bounded(routes_redis_url: str, monkeypatch: Any) -> None:
    from stack.gateway import sessions as module

    monkeypatch.setattr(module, "REMEMBERED", 3)

    async def scenario() -> None:
        async with _redis(routes_redis_url) as r:
            sessions = Sessions(r, ttl=3600)
            sids = [(await _ask(sessions, None))[0] for _ in range(5)]
            before = await _commands(r)
            await _ask(sessions, sids[0])  # forgotten: looked up in Redis again
            assert await _commands(r) - before == 2
            before = await _commands(r)
            await _ask(sessions, sids[-1])  # remembered
            assert await _commands(r) - before == 1

    asyncio.run(scenario())
