"""A small client for Coralogix's DataPrime query API (used by the labs to verify answers).

``POST https://api.<region>.coralogix.com/api/v1/dataprime/query`` with a DataQuerying API key
(``CX_API_KEY``) as a Bearer token. The answer is NDJSON: a ``queryId`` line, then ``result``
lines whose ``results[].userData`` is a JSON *string*. Errors may arrive inside an HTTP 200 as
an ``error`` line. The API allows 30 queries per minute: a client-side sliding-window limiter
keeps under it, and a 429 is retried after its ``Retry-After``.

The key is never printed: ``repr``/``str`` of the client, and every exception message, mask it.
``requests`` is used directly: Coralogix publishes no Python SDK for the DataPrime query API.
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)

QUERY_PATH = "/api/v1/dataprime/query"
DEFAULT_TIMEOUT = 30.0
QUERIES_PER_MINUTE = 30

# Region → (current domain, legacy domain). The query API lives at api.<region>.coralogix.com.
REGIONS: dict[str, tuple[str, str | None]] = {
    "EU1": ("eu1.coralogix.com", "coralogix.com"),
    "EU2": ("eu2.coralogix.com", None),
    "US1": ("us1.coralogix.com", "coralogix.us"),
    "US2": ("us2.coralogix.com", "cx498.coralogix.com"),
    "US3": ("us3.coralogix.com", None),
    "AP1": ("ap1.coralogix.com", "coralogix.in"),
    "AP2": ("ap2.coralogix.com", "coralogixsg.com"),
    "AP3": ("ap3.coralogix.com", None),
}


class DataPrimeError(RuntimeError):
    """A query failed (HTTP error, an error line inside a 200, a timeout, a bad answer)."""


class RateLimited(DataPrimeError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def region_of(value: str) -> str:
    """A region code from a code ('eu2'), a domain ('eu2.coralogix.com') or a legacy domain."""
    v = value.strip().lower().removeprefix("https://").removeprefix("http://").strip("/")
    v = v.removeprefix("api.").removeprefix("ingress.")
    for code, (domain, legacy) in REGIONS.items():
        if v in (code.lower(), domain, legacy):
            return code
    raise ValueError(
        f"unknown Coralogix region or domain {value!r}; one of: "
        + ", ".join(f"{c} ({d})" for c, (d, _) in REGIONS.items())
    )


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


@dataclass
class QueryResult:
    query_id: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)

    def first(self, key: str | None = None) -> Any:
        if not self.rows:
            return None
        return self.rows[0] if key is None else _dig(self.rows[0], key)


def _dig(row: Mapping[str, Any], key: str) -> Any:
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
            err = line["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            code = err.get("code") if isinstance(err, dict) else None
            raise DataPrimeError(
                f"the DataPrime query failed: {message}" + (f" ({code})" if code else "")
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
    (or DATAPRIME_API_URL, a base-URL override used by tests)."""

    def __init__(
        self,
        api_key: str,
        *,
        region: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        limiter: RateLimiter | None = None,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise DataPrimeError("no DataQuerying API key: set CX_API_KEY")
        if not base_url and not region:
            raise DataPrimeError("set a region (CX_REGION / CX_DOMAIN) or a base URL")
        self._key = api_key
        self.base_url = (base_url or api_base_url(region or "")).rstrip("/")
        self.timeout = timeout
        self.limiter = limiter or RateLimiter()
        self.max_retries = max_retries
        self._sleep = sleep
        self.http = requests.Session()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kw: Any) -> DataPrimeClient:
        env = os.environ if env is None else env
        return cls(
            env.get("CX_API_KEY", ""),
            region=env.get("CX_REGION") or env.get("CX_DOMAIN") or None,
            base_url=env.get("DATAPRIME_API_URL") or None,
            **kw,
        )

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
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
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


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value or 1), 120.0))
    except ValueError:
        return 5.0
