"""Coralogix's Prometheus-compatible Metrics API, for the one check that reads host metrics.

Per Coralogix's Metrics API page (https://coralogix.com/docs/user-guides/data-query/metrics-api/):
``GET https://api.<domain>/metrics/api/v1/query_range?query=…&start=…&end=…&step=…`` with a
DataQuerying key as ``Authorization: Bearer``; the answer is Prometheus' JSON
(``{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {…},
"values": [[ts, "v"], …]}]}}``, ``status: error`` with ``error`` otherwise).

OTLP metric names reach PromQL translated the Prometheus way (dots → underscores, the unit and
``_total`` appended to counters): ``system.cpu.time`` → ``system_cpu_time_seconds_total``.
The key is masked in every message, like ``stack.common.dataprime_client``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import requests

from stack.common.dataprime_client import DataPrimeError, RateLimiter, api_base_url

METRICS_PATH = "/metrics/api/v1/query_range"


def metrics_base_url(env: Mapping[str, str]) -> str:
    """METRICS_API_URL (tests), else https://api.<domain> from CX_REGION / CX_DOMAIN."""
    if url := env.get("METRICS_API_URL"):
        return url.rstrip("/")
    if url := env.get("DATAPRIME_API_URL"):  # one fake serves both APIs in tests
        return url.rstrip("/")
    region = env.get("CX_REGION") or env.get("CX_DOMAIN")
    if not region:
        raise DataPrimeError("set a region (CX_REGION / CX_DOMAIN) for the Metrics API")
    return api_base_url(region)


class MetricsClient:
    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not api_key:
            raise DataPrimeError("no DataQuerying API key: set CX_API_KEY")
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.limiter = limiter or RateLimiter()
        self.http = requests.Session()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kw: Any) -> MetricsClient:
        env = os.environ if env is None else env
        return cls(env.get("CX_API_KEY", ""), metrics_base_url(env), **kw)

    def __repr__(self) -> str:
        return f"MetricsClient(base_url={self.base_url!r}, api_key='***')"

    def _mask(self, text: str) -> str:
        return text.replace(self._key, "***")

    def query_range(
        self, query: str, *, start: float, end: float, step_s: int = 15
    ) -> list[dict[str, Any]]:
        """The matrix: ``[{"metric": {...}, "values": [[ts, float], ...]}, ...]``."""
        self.limiter.acquire()
        try:
            resp = self.http.get(
                self.base_url + METRICS_PATH,
                params={
                    "query": query,
                    "start": f"{start:.3f}",
                    "end": f"{end:.3f}",
                    "step": f"{step_s}s",
                },
                headers={"Authorization": f"Bearer {self._key}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise DataPrimeError(
                self._mask(f"cannot reach the Metrics API at {self.base_url}: {exc}")
            ) from None
        if resp.status_code in (401, 403):
            raise DataPrimeError(
                f"HTTP {resp.status_code}: the API key (CX_API_KEY) was refused by the Metrics API"
            )
        try:
            body = resp.json()
        except ValueError:
            raise DataPrimeError(
                self._mask(f"HTTP {resp.status_code} from the Metrics API: {resp.text[:200]}")
            ) from None
        if resp.status_code >= 400 or body.get("status") != "success":
            raise DataPrimeError(self._mask(f"the PromQL query failed: {body.get('error', body)}"))
        out = []
        for series in body.get("data", {}).get("result", []):
            values = [(float(t), float(v)) for t, v in series.get("values", [])]
            out.append({"metric": series.get("metric", {}), "values": values})
        return out


def mean_of(matrix: list[dict[str, Any]]) -> float | None:
    """The mean over every series and sample (None when there is no sample)."""
    values = [v for s in matrix for _t, v in s["values"]]
    return sum(values) / len(values) if values else None
