"""The online-check proxy: the gateway runs attendees' Coralogix checks with the room's key.

Attendee kernels hold no Coralogix key: a lab posts its query to `POST /api/room/check`, and
the gateway runs it with CX_API_KEY, through ONE rate limiter for the whole room (the
DataPrime API allows 30 queries a minute per key) and a short Redis cache shared by every
attendee re-running the same check.

The query clients live in `stack.common.dataprime_client` / `stack.common.metrics_client`
(they depend only on `requests`); they are imported lazily so the gateway does not load them
unless a room uses online checks. The limiter is this process's: one gateway serves one room,
so it is one limit per room. Kernels that hold a key themselves use the Redis limiter.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import redis.asyncio as aioredis

from stack.common import envvars
from stack.common.room import CHECK_CACHE_SECONDS, CheckIn, check_cache_key

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _env(settings: Any) -> dict[str, str]:
    env = {
        "CX_API_KEY": settings.cx_api_key.get_secret_value(),
        "CX_DOMAIN": settings.cx_domain,
    }
    for name in ("CX_REGION", "DATAPRIME_API_URL", "METRICS_API_URL"):
        if value := envvars.get(name):
            env[name] = value
    return env


def configured(settings: Any) -> bool:
    return bool(settings.cx_api_key.get_secret_value())


def _client(api: str, settings: Any) -> Any:
    with _lock:
        if api not in _clients:
            from stack.common.dataprime_client import DataPrimeClient, RateLimiter
            from stack.common.metrics_client import MetricsClient

            limiter = _clients.setdefault("limiter", RateLimiter())
            env = _env(settings)
            _clients["dataprime"] = DataPrimeClient.from_env(env, limiter=limiter, max_retries=1)
            _clients["metrics"] = MetricsClient.from_env(env, limiter=limiter)
        return _clients[api]


def _run(body: CheckIn, settings: Any) -> dict[str, Any]:
    if body.api == "metrics":
        matrix = _client("metrics", settings).query_range(
            body.query, start=body.start, end=body.end, step_s=body.step_s
        )
        return {"api": "metrics", "series": matrix}
    result = _client("dataprime", settings).query(body.query, start=body.start, end=body.end)
    return {"api": "dataprime", "query_id": result.query_id, "rows": result.rows}


async def run_check(redis: aioredis.Redis, body: CheckIn, settings: Any) -> dict[str, Any]:
    key = check_cache_key(body)
    if cached := await redis.get(key):
        return {**orjson.loads(cached), "cached": True}
    answer = await asyncio.to_thread(_run, body, settings)
    await redis.set(key, orjson.dumps(answer), ex=CHECK_CACHE_SECONDS)
    return {**answer, "cached": False}
