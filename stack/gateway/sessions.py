"""Browser sessions: an HttpOnly cookie backed by a Redis key with a sliding TTL."""

from __future__ import annotations

import re
import secrets
import time

import redis.asyncio as aioredis
from fastapi import Request, Response

from stack.common.redis import SESSION_PREFIX

COOKIE = "dp_session"
_VALID = re.compile(r"^[0-9a-f]{32}$")


async def session_id(request: Request, response: Response, redis: aioredis.Redis, ttl: int) -> str:
    sid = request.cookies.get(COOKIE, "")
    key = f"{SESSION_PREFIX}{sid}"
    # One round trip: refresh the TTL of a known session, or learn it is unknown.
    if _VALID.match(sid) and await redis.expire(key, ttl):
        return sid
    sid = secrets.token_hex(16)
    await redis.set(f"{SESSION_PREFIX}{sid}", repr(time.time()), ex=ttl)
    response.set_cookie(COOKIE, sid, max_age=ttl, httponly=True, samesite="lax", path="/")
    return sid
