"""Browser sessions: an HttpOnly cookie backed by a Redis key with a sliding TTL."""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict

import redis.asyncio as aioredis
from fastapi import Request, Response

from stack.common.redis import SESSION_PREFIX

COOKIE = "dp_session"
_VALID = re.compile(r"^[0-9a-f]{32}$")
REMEMBERED = 10_000  # sessions the gateway remembers having refreshed (least recent dropped)


class Sessions:
    """The session of each request: the cookie's, while its Redis key lives, else a new one.

    Sliding the key's TTL on every question was a Redis round trip each: two wakeups, the
    gateway's and Redis's (issue 19). A session this gateway created or refreshed less than
    `ttl / 60` ago (a minute at the default hour) is used as it is: its key still has at least
    59/60 of its TTL ahead. `forget()` (the reset, which deletes the keys) empties the memory.
    `lazy=False` refreshes on every request (SESSION_REFRESH=every, the budget bench's
    baseline arm)."""

    def __init__(self, redis: aioredis.Redis, ttl: int, *, lazy: bool = True) -> None:
        self.redis = redis
        self.ttl = ttl
        self.refresh_after = ttl / 60 if lazy else 0.0
        self._refreshed: OrderedDict[str, float] = OrderedDict()

    async def current(self, request: Request, response: Response) -> str:
        sid = request.cookies.get(COOKIE, "")
        now = time.monotonic()
        refreshed = self._refreshed.get(sid)
        if refreshed is not None and now - refreshed < self.refresh_after:
            return sid
        # One round trip: refresh the TTL of a known session, or learn it is unknown.
        if not (_VALID.match(sid) and await self.redis.expire(f"{SESSION_PREFIX}{sid}", self.ttl)):
            sid = secrets.token_hex(16)
            await self.redis.set(f"{SESSION_PREFIX}{sid}", repr(time.time()), ex=self.ttl)
        self._remember(sid, now)
        # The cookie slides with the key: with its Max-Age set only when the session began,
        # the browser would drop it an hour in, however busy the learner (and a fault aimed
        # at their session would stop finding them).
        response.set_cookie(COOKIE, sid, max_age=self.ttl, httponly=True, samesite="lax", path="/")
        return sid

    def forget(self) -> None:
        self._refreshed.clear()

    def _remember(self, sid: str, now: float) -> None:
        if not self.refresh_after:
            return
        self._refreshed[sid] = now
        self._refreshed.move_to_end(sid)
        while len(self._refreshed) > REMEMBERED:
            self._refreshed.popitem(last=False)
