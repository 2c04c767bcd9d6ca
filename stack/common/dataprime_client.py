"""A small client for Coralogix's DataPrime query API (used by the labs to verify answers).

``POST https://api.<region>.coralogix.com/api/v1/dataprime/query`` with a DataQuerying API key
(``CX_API_KEY``) as a Bearer token. The answer is NDJSON: a ``queryId`` line, then ``result``
lines whose ``results[].userData`` is a JSON *string*. Errors may arrive inside an HTTP 200 as
an ``error`` line (``{"error": {"message": ...}}`` or ``{"error": {"queryError": {...}}}``),
and a final ``statistics`` line whose status is not ``COMPLETED`` means the query did not
finish: both are failures carrying the product's own message.

The API allows 30 queries per minute *per key*. A room shares one key, so the limiter and a
short result cache live in Redis (:class:`RedisRateLimiter`, :class:`RedisCache`, one Lua
script on Redis's own clock): every kernel and CLI in the room stays under the limit together.
Without Redis it falls back to a per-process sliding window. A 429 is retried after its
``Retry-After``.

The key is never printed: ``repr``/``str`` of the client, and every exception message, mask it.
``requests`` is used directly: Coralogix publishes no Python SDK for the DataPrime query API.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from stack.common import coralogix as _regions

log = logging.getLogger(__name__)

QUERY_PATH = "/api/v1/dataprime/query"
DEFAULT_TIMEOUT = 30.0
QUERIES_PER_MINUTE = 30

CACHE_TTL_S = 60

# Region → (current domain, legacy domain), from the kit's one region table
# (stack.common.coralogix). The query API lives at api.<domain>.
REGIONS: dict[str, tuple[str, str | None]] = {
    code: (r.domain, r.legacy_domain) for code, r in _regions.REGIONS.items()
}


class DataPrimeError(RuntimeError):
    """A query failed (HTTP error, an error line inside a 200, a timeout, a bad answer)."""


class RateLimited(DataPrimeError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def region_of(value: str) -> str:
    """A region code from a code ('eu2'), a domain ('eu2.coralogix.com'), a legacy domain or a
    team host."""
    return _regions.region_of(value).code


def domain_of(region_or_domain: str) -> str:
    return REGIONS[region_of(region_or_domain)][0]


def api_base_url(region_or_domain: str) -> str:
    return f"https://api.{domain_of(region_or_domain)}"


def _iso(ts: datetime | float | str | None) -> str | None:
    if ts is None or isinstance(ts, str):
        return ts
    if isinstance(ts, int | float):
        ts = datetime.fromtimestamp(ts, tz=UTC)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class RateLimiter:
    """Sliding window: at most ``limit`` acquisitions in any ``per`` seconds.

    ``clock`` and ``sleep`` are injectable so tests can simulate time.
    """

    def __init__(
        self,
        limit: int = QUERIES_PER_MINUTE,
        per: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.per = limit, per
        self.clock, self.sleep = clock, sleep
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_time(self) -> float:
        now = self.clock()
        while self._stamps and now - self._stamps[0] >= self.per:
            self._stamps.popleft()
        if len(self._stamps) < self.limit:
            return 0.0
        return self.per - (now - self._stamps[0])

    def acquire(self) -> float:
        """Block until a slot is free; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while (delay := self.wait_time()) > 0:
                self.sleep(delay)
                waited += delay
            self._stamps.append(self.clock())
        return waited


# Sliding window in one sorted set, on Redis's clock (TIME), so every process of the room
# agrees. Returns 0 when a slot was taken, else the milliseconds until the oldest slot frees.
_ACQUIRE_LUA = """
local key, limit, window_ms, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
local n = redis.call('ZCARD', key)
if n < limit then
  redis.call('ZADD', key, now, member .. ':' .. now)
  redis.call('PEXPIRE', key, window_ms)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window_ms - now)
"""


def key_tag(api_key: str) -> str:
    """A short, irreversible tag of the API key: one limiter per key, the key never stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class RedisRateLimiter:
    """Room-wide sliding window: at most ``limit`` queries per ``per`` seconds for one API key,
    across every process that shares the Redis. ``on_wait(seconds)`` is told before each wait
    (the labs show "checking…")."""

    def __init__(
        self,
        redis: Any,
        api_key: str,
        limit: int = QUERIES_PER_MINUTE,
        per: float = 60.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis, self.limit, self.per, self.sleep = redis, limit, per, sleep
        self.key = f"ratelimit:dataprime:{key_tag(api_key)}"
        self._script = redis.register_script(_ACQUIRE_LUA)
        self._member = f"{os.getpid()}-{threading.get_ident()}"
        self._seq = 0
        self.on_wait: Callable[[float], None] | None = None

    def try_acquire(self) -> float:
        """0 if a slot was taken now, else the seconds to wait before trying again."""
        self._seq += 1
        ms = self._script(
            keys=[self.key],
            args=[self.limit, int(self.per * 1000), f"{self._member}-{self._seq}"],
        )
        return int(ms) / 1000.0

    def acquire(self) -> float:
        waited = 0.0
        while (delay := self.try_acquire()) > 0:
            if self.on_wait:
                self.on_wait(delay)
            self.sleep(delay)
            waited += delay
        return waited


class RedisCache:
    """Answers kept ``ttl`` seconds under ``cache:dataprime:<hash>``: the same question asked
    by thirty attendees costs one query."""

    def __init__(self, redis: Any, ttl: int = CACHE_TTL_S) -> None:
        self.redis, self.ttl = redis, ttl

    @staticmethod
    def key(*parts: Any) -> str:
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
        return f"cache:dataprime:{digest.hexdigest()[:32]}"

    def get(self, key: str) -> QueryResult | None:
        raw = self.redis.get(key)
        if raw is None:
            return None
        data = json.loads(raw)
        return QueryResult(data.get("query_id"), data.get("rows") or [], data.get("warnings") or [])

    def put(self, key: str, result: QueryResult) -> None:
        payload = {"query_id": result.query_id, "rows": result.rows, "warnings": result.warnings}
        self.redis.set(key, json.dumps(payload, default=str), ex=self.ttl)


@dataclass
class QueryResult:
    query_id: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)
    status: str | None = None

    def first(self, key: str | None = None) -> Any:
        if not self.rows:
            return None
        return self.rows[0] if key is None else dig(self.rows[0], key)


def _error_text(err: Any) -> str:
    """The product's own message from an error line, whatever its nesting
    (``{"message": ..}``, ``{"queryError": {"message": ..}}``, ``{"code": {..}}``)."""
    if isinstance(err, str):
        return err.strip() or "unspecified error"
    if not isinstance(err, Mapping):
        return json.dumps(err)[:300]
    for inner in ("queryError", "query_error", "rateLimitReached", "details"):
        if isinstance(err.get(inner), Mapping | str):
            text = _error_text(err[inner])
            kind = inner if inner != "details" else None
            return f"{text} [{kind}]" if kind and kind != "queryError" else text
    message = err.get("message") or err.get("reason") or err.get("description")
    code = err.get("code")
    if isinstance(code, Mapping):
        code = next(iter(code), None) or None  # e.g. {"rateLimitReached": {}}
    if message:
        return str(message) + (f" ({code})" if code else "")
    return json.dumps(err)[:300]


def _statistics_status(stats: Any) -> tuple[str | None, str | None]:
    if not isinstance(stats, Mapping):
        return None, None
    status = stats.get("status") or stats.get("queryStatus") or stats.get("state")
    if isinstance(status, Mapping):  # {"status": {"code": "FAILED", "message": ..}}
        return (
            str(status.get("code") or status.get("status") or "UNKNOWN"),
            status.get("message") or stats.get("message"),
        )
    message = stats.get("message") or stats.get("reason") or stats.get("error")
    if isinstance(message, Mapping):
        message = _error_text(message)
    return (str(status) if status is not None else None), message


def dig(row: Mapping[str, Any], key: str) -> Any:
    """A row's field by key, or by a dotted path into nested objects."""
    if key in row:
        return row[key]
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def parse_ndjson(text: str) -> QueryResult:
    """Decode the NDJSON answer; raise DataPrimeError for an ``error`` line."""
    result = QueryResult(query_id=None)
    for raw in text.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataPrimeError(f"undecodable line in the answer: {raw[:120]!r}") from exc
        if not isinstance(line, dict):
            continue
        if "error" in line:
            raise DataPrimeError(f"the DataPrime query failed: {_error_text(line['error'])}")
        if "statistics" in line:
            status, message = _statistics_status(line["statistics"])
            result.status = status
            if status is not None and not status.upper().endswith("COMPLETED"):
                raise DataPrimeError(
                    f"the DataPrime query did not complete (status {status})"
                    + (f": {message}" if message else "")
                )
        if "queryId" in line:
            qid = line["queryId"]
            result.query_id = qid.get("queryId") if isinstance(qid, dict) else qid
        if "warning" in line:
            result.warnings.append(line["warning"])
        if "result" in line:
            for item in (line["result"] or {}).get("results") or []:
                data = item.get("userData")
                if isinstance(data, str):
                    try:
                        data = json.loads(data)
                    except json.JSONDecodeError:
                        data = {"_raw": data}
                if isinstance(data, dict):
                    result.rows.append(data)
    return result


class DataPrimeClient:
    """``DataPrimeClient.from_env()`` reads CX_API_KEY and CX_REGION / CX_DOMAIN
    (or DATAPRIME_API_URL, a base-URL override used by tests), and REDIS_URL for the
    room-wide limiter and cache."""

    def __init__(
        self,
        api_key: str,
        *,
        region: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        limiter: RateLimiter | RedisRateLimiter | None = None,
        cache: RedisCache | None = None,
        redis: Any = None,
        on_wait: Callable[[float], None] | None = None,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise DataPrimeError("no DataQuerying API key: set CX_API_KEY")
        if not base_url and not region:
            raise DataPrimeError("set a region (CX_REGION / CX_DOMAIN) or a base URL")
        self._key = api_key
        try:
            self.base_url = (base_url or api_base_url(region or "")).rstrip("/")
        except ValueError as exc:
            raise DataPrimeError(str(exc)) from None
        self.timeout = timeout
        if limiter is None:
            limiter = (
                RedisRateLimiter(redis, api_key, sleep=sleep)
                if redis is not None
                else RateLimiter(sleep=sleep)
            )
        self.limiter = limiter
        self.cache = cache if cache is not None else (RedisCache(redis) if redis else None)
        self.on_wait = on_wait
        self.max_retries = max_retries
        self._sleep = sleep
        self.http = requests.Session()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, redis: Any = None, **kw: Any
    ) -> DataPrimeClient:
        env = os.environ if env is None else env
        if redis is None and env.get("REDIS_URL"):
            redis = _connect_redis(env["REDIS_URL"])
        return cls(
            env.get("CX_API_KEY", ""),
            region=env.get("CX_REGION") or env.get("CX_DOMAIN") or None,
            base_url=env.get("DATAPRIME_API_URL") or None,
            redis=redis,
            **kw,
        )

    @property
    def shared(self) -> bool:
        """True when the limiter is the room-wide one (Redis)."""
        return isinstance(self.limiter, RedisRateLimiter)

    @staticmethod
    def configured(env: Mapping[str, str] | None = None) -> bool:
        env = os.environ if env is None else env
        return bool(env.get("CX_API_KEY"))

    def __repr__(self) -> str:
        return f"DataPrimeClient(base_url={self.base_url!r}, api_key='***')"

    __str__ = __repr__

    def _mask(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def query(
        self,
        query: str,
        *,
        start: datetime | float | str | None = None,
        end: datetime | float | str | None = None,
        tier: str = "TIER_FREQUENT_SEARCH",
    ) -> QueryResult:
        metadata: dict[str, Any] = {"tier": tier, "syntax": "QUERY_SYNTAX_DATAPRIME"}
        if start is not None:
            metadata["startDate"] = _iso(start)
        if end is not None:
            metadata["endDate"] = _iso(end)
        body = {"query": query, "metadata": metadata}
        cache_key = RedisCache.key(self.base_url, key_tag(self._key), body) if self.cache else ""
        if self.cache and (hit := self._cache_get(cache_key)) is not None:
            return hit
        result = self._post(body)
        if self.cache:
            self._cache_put(cache_key, result)
        return result

    def _cache_get(self, key: str) -> QueryResult | None:
        try:
            return self.cache.get(key) if self.cache else None
        except Exception as exc:
            log.warning("DataPrime cache unavailable: %s", exc)
            return None

    def _cache_put(self, key: str, result: QueryResult) -> None:
        try:
            if self.cache:
                self.cache.put(key, result)
        except Exception as exc:
            log.warning("DataPrime cache unavailable: %s", exc)

    def _acquire(self) -> None:
        if isinstance(self.limiter, RedisRateLimiter):
            self.limiter.on_wait = self.on_wait
            try:
                self.limiter.acquire()
                return
            except Exception as exc:
                if "redis" not in type(exc).__module__:
                    raise
                log.warning("room-wide DataPrime limiter unavailable (%s): per-process", exc)
                self.limiter = RateLimiter(sleep=self._sleep)
        delay = self.limiter.wait_time()
        if delay > 0 and self.on_wait:
            self.on_wait(delay)
        self.limiter.acquire()

    def _post(self, body: dict[str, Any]) -> QueryResult:
        attempt = 0
        while True:
            attempt += 1
            self._acquire()
            try:
                resp = self.http.post(
                    self.base_url + QUERY_PATH,
                    json=body,
                    headers={
                        "Authorization": f"Bearer {self._key}",
                        "Content-Type": "application/json",
                    },
                    timeout=self.timeout,
                )
            except requests.Timeout:
                raise DataPrimeError(
                    f"the DataPrime API did not answer within {self.timeout:.0f} s"
                ) from None
            except requests.RequestException as exc:
                raise DataPrimeError(
                    self._mask(f"cannot reach the DataPrime API at {self.base_url}: {exc}")
                ) from None
            if resp.status_code == 429:
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                if attempt > self.max_retries:
                    raise RateLimited(
                        f"rate limited by the DataPrime API (30 queries/minute); retry in "
                        f"{retry_after:.0f} s",
                        retry_after,
                    )
                log.info("DataPrime API rate limit: retrying in %.1f s", retry_after)
                self._sleep(retry_after)
                continue
            if resp.status_code in (401, 403):
                raise DataPrimeError(
                    f"HTTP {resp.status_code}: the DataQuerying API key (CX_API_KEY) was refused "
                    "— check the key, its permissions and the region"
                )
            if resp.status_code >= 400:
                raise DataPrimeError(
                    self._mask(f"HTTP {resp.status_code} from the DataPrime API: {resp.text[:300]}")
                )
            try:
                return parse_ndjson(resp.text)
            except DataPrimeError as exc:
                raise DataPrimeError(self._mask(str(exc))) from None


def _connect_redis(url: str) -> Any:
    """A Redis client for the room-wide limiter, or None (per-process limiter) if unreachable."""
    try:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        return client
    except Exception as exc:
        # the URL (and the exception text) may carry a password: name only the failure kind
        log.warning(
            "no Redis at REDIS_URL for the shared DataPrime limiter (%s): per-process limiter",
            type(exc).__name__,
        )
        return None


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 1), 120.0))
    except ValueError:
        return 5.0
