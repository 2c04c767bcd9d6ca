"""Deterministic synthetic observability data (spans + logs) for the executor.

Conventions (mirroring Coralogix):
- ``$m.timestamp`` is a ``Timestamp`` (an ``int`` of nanoseconds since the Unix
  epoch, UTC). All rows fall in the 24 h before ``ANCHOR``; the executor's
  ``now()`` resolves to ``ANCHOR`` so "last 15m" style filters always select rows.
- ``$m.duration`` (spans) is in MICROseconds.
- Records are flat dicts keyed by canonical keypaths (``"$l.serviceName"``,
  ``"$d.tags['http.response.status_code']"``), which is what compiled expressions look up.
- Span field names follow what Coralogix stores for OpenTelemetry spans (see FIELD_MAP and
  docs/dataprime.md): labels for service/operation/trace ids, span attributes under
  ``$d.tags`` with their semantic-convention names kept whole (``['http.route']``).

Built lazily once per process with ``random.Random(42)``; treat rows as read-only.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

SEED = 42
SPAN_COUNT = 3000
LOG_COUNT = 3000
ANCHOR = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
ANCHOR_NS = int(ANCHOR.timestamp()) * 1_000_000_000
DAY_NS = 86_400_000_000_000
APPLICATION = "dataprime-shop"


class Timestamp(int):
    """Nanoseconds since the epoch; an int subclass so comparisons/arithmetic stay fast."""

    __slots__ = ()

    def iso(self) -> str:
        secs, ns = divmod(int(self), 1_000_000_000)
        base = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{ns // 1_000_000:03d}Z"

    def __repr__(self) -> str:
        return f"Timestamp({self.iso()})"


# service -> (traffic weight, median latency ms, 5xx error rate, operations)
SERVICE_PROFILES: dict[str, tuple[int, float, float, tuple[str, ...]]] = {
    "frontend": (22, 45.0, 0.015, ("GET /", "GET /product/{id}", "GET /cart", "POST /checkout")),
    "checkout": (12, 140.0, 0.04, ("POST /checkout", "GET /checkout/summary", "POST /order")),
    "payment": (9, 380.0, 0.07, ("POST /charge", "POST /refund", "GET /payment/status")),
    "cart": (14, 22.0, 0.01, ("GET /cart", "POST /cart/items", "DELETE /cart/items")),
    "auth": (10, 30.0, 0.02, ("POST /login", "POST /token/refresh", "POST /logout")),
    "inventory": (9, 18.0, 0.015, ("GET /stock", "POST /reserve", "POST /release")),
    "shipping": (6, 90.0, 0.035, ("POST /quote", "POST /ship", "GET /track")),
    "search": (10, 65.0, 0.012, ("GET /search", "GET /suggest")),
    "recommendation": (5, 50.0, 0.02, ("GET /recommendations",)),
    "email": (3, 160.0, 0.03, ("POST /send", "POST /send/receipt")),
}
SERVICES: tuple[str, ...] = tuple(SERVICE_PROFILES)
OPERATIONS: dict[str, tuple[str, ...]] = {s: p[3] for s, p in SERVICE_PROFILES.items()}
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
VERSIONS = ("1.4.2", "1.5.0")
SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_INFO = (
    "{op} completed in {ms} ms",
    "user {uid} logged in",
    "order {oid} placed, total ${amount}",
    "payment authorized for order {oid}",
    "cache hit for product {pid}",
    "shipment {sid} created via {carrier}",
    "search query '{term}' returned {n} results",
    "email receipt sent to user {uid}",
    "stock reserved for sku {sku}",
    "health check ok",
)
_DEBUG = (
    "cache miss for key product:{pid}",
    "feature flag new-checkout evaluated to {flag}",
    "loaded {n} recommendations for user {uid}",
    "db query took {ms} ms",
)
_WARNING = (
    "slow response from payment gateway: {slow} ms",
    "retrying request to inventory (attempt 2/3)",
    "rate limit approaching for client {cid}",
    "deprecated API version v1 used by client {cid}",
    "high memory usage: {pct}% of limit",
)
_ERROR = (
    "timeout calling payment gateway after 5000 ms",
    "connection refused: redis:6379",
    "database deadlock detected on table orders",
    "failed to charge card: insufficient funds",
    "upstream returned 503 Service Unavailable",
    "NullPointerException in CartController.addItem",
    "TLS handshake timeout with smtp.example.com",
    "request to inventory failed: connection reset by peer",
    "invalid token: signature expired for user {uid}",
)
_CRITICAL = (
    "circuit breaker open for payment-gateway",
    "out of memory: killing worker {n}",
    "database connection pool exhausted",
)
_TEMPLATES = {
    "DEBUG": _DEBUG,
    "INFO": _INFO,
    "WARNING": _WARNING,
    "ERROR": _ERROR,
    "CRITICAL": _CRITICAL,
}


def _hex(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def _timestamp(rng: random.Random) -> Timestamp:
    # Slightly denser towards the anchor so the "last hour" has plenty of rows.
    offset = int(DAY_NS * (rng.random() ** 1.3))
    return Timestamp(ANCHOR_NS - offset)


def _build_spans(rng: random.Random, trace_pool: list[str]) -> list[dict[str, Any]]:
    weights = [p[0] for p in SERVICE_PROFILES.values()]
    spans: list[dict[str, Any]] = []
    for _ in range(SPAN_COUNT):
        service = rng.choices(SERVICES, weights)[0]
        _, median_ms, err_rate, ops = SERVICE_PROFILES[service]
        op = rng.choice(ops)
        method, route = op.split(" ", 1)
        duration_us = int(median_ms * 1000 * rng.lognormvariate(0, 0.55))
        error = rng.random() < err_rate
        if error:
            status = rng.choice((500, 500, 502, 503, 504))
            if status == 504:
                duration_us = max(duration_us, 5_000_000)
        elif rng.random() < 0.04:
            status = rng.choice((400, 401, 404, 429))
        else:
            status = 201 if method == "POST" and rng.random() < 0.3 else 200
        spans.append(
            {
                "$m.timestamp": _timestamp(rng),
                "$m.duration": duration_us,
                "$l.applicationName": APPLICATION,
                "$l.subsystemName": service,
                "$l.serviceName": service,
                "$l.operationName": op,
                "$l.traceId": rng.choice(trace_pool),
                "$l.spanId": _hex(rng, 8),
                "$d.tags['http.request.method']": method,
                "$d.tags['http.route']": route,
                "$d.tags['http.response.status_code']": status,
                "$d.tags['otel.status_code']": "ERROR" if error else "UNSET",
                "$d.tags.env": "production",
                "$d.tags.region": rng.choice(REGIONS),
                "$d.tags.version": rng.choice(VERSIONS),
            }
        )
    spans.sort(key=lambda r: r["$m.timestamp"])
    return spans


def _build_logs(rng: random.Random, trace_pool: list[str]) -> list[dict[str, Any]]:
    weights = [p[0] for p in SERVICE_PROFILES.values()]
    logs: list[dict[str, Any]] = []
    carriers = ("ups", "dhl", "fedex")
    terms = ("running shoes", "laptop", "coffee", "headphones")
    for i in range(LOG_COUNT):
        service = rng.choices(SERVICES, weights)[0]
        err_rate = SERVICE_PROFILES[service][2]
        roll = rng.random()
        # error-prone services log proportionally more ERROR/CRITICAL lines
        if roll < 0.03 + err_rate * 2:
            severity = "CRITICAL" if rng.random() < 0.15 else "ERROR"
        elif roll < 0.15 + err_rate * 2:
            severity = "WARNING"
        elif roll < 0.33:
            severity = "DEBUG"
        else:
            severity = "INFO"
        op = rng.choice(OPERATIONS[service])
        message = rng.choice(_TEMPLATES[severity]).format(
            op=op,
            ms=rng.randint(3, 900),
            uid=f"u-{rng.randint(1000, 9999)}",
            oid=f"o-{rng.randint(10000, 99999)}",
            amount=f"{rng.uniform(5, 400):.2f}",
            pid=rng.randint(1, 500),
            sid=f"s-{rng.randint(1000, 9999)}",
            carrier=rng.choice(carriers),
            term=rng.choice(terms),
            n=rng.randint(0, 120),
            sku=f"SKU-{rng.randint(100, 999)}",
            flag=rng.choice(("true", "false")),
            slow=rng.randint(1200, 4800),
            cid=f"c-{rng.randint(10, 99)}",
            pct=rng.randint(80, 97),
        )
        if severity in ("ERROR", "CRITICAL"):
            status = rng.choice((500, 502, 503, 504))
        elif severity == "WARNING":
            status = rng.choice((200, 429, 404))
        else:
            status = 200
        logs.append(
            {
                "$m.timestamp": _timestamp(rng),
                "$m.severity": severity,
                "$l.applicationname": APPLICATION,
                "$l.subsystemname": service,
                "$d.message": message,
                "$d.status_code": status,
                "$d.trace_id": rng.choice(trace_pool),
                "$d.log_id": i,
            }
        )
    logs.sort(key=lambda r: r["$m.timestamp"])
    return logs


# keypath -> (dataset, what it holds, public source). Rendered into docs/dataprime.md.
FIELD_MAP: tuple[tuple[str, str, str, str], ...] = (
    ("$l.serviceName", "spans", "OTel `service.name`",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$l.operationName", "spans", "span name (operation)",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$l.traceId", "spans", "trace id", 
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$l.spanId", "spans", "span id",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$l.applicationName", "spans", "Coralogix application (`cx.application.name`)",
     "https://coralogix.com/docs/user-guides/mcp-server/tools/logs-and-traces/"),
    ("$l.subsystemName", "spans", "Coralogix subsystem (`cx.subsystem.name`)",
     "https://coralogix.com/docs/user-guides/mcp-server/tools/logs-and-traces/"),
    ("$m.duration", "spans", "span duration, a number of microseconds",
     "https://coralogix.com/docs/dataprime/language-reference/access_mechanisms/"),
    ("$m.timestamp", "logs, spans", "event time / span start (timestamp)",
     "https://coralogix.com/docs/dataprime/language-reference/access_mechanisms/"),
    ("$d.tags['http.response.status_code']", "spans", "span attribute (OTel semconv)",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$d.tags['http.request.method']", "spans", "span attribute (OTel semconv)",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$d.tags['http.route']", "spans", "span attribute (OTel semconv)",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$d.tags['workshop.attendee']", "spans", "baggage copied to a span attribute (this kit)",
     "https://coralogix.com/docs/dataprime/user-guide/foundations/understanding-spans/"),
    ("$m.severity", "logs", "severity enum DEBUG, VERBOSE, INFO, WARNING, ERROR, CRITICAL",
     "https://coralogix.com/docs/dataprime/language-reference/access_mechanisms/"),
    ("$l.applicationname", "logs", "Coralogix application name",
     "https://coralogix.com/docs/user-guides/mcp-server/tools/logs-and-traces/"),
    ("$l.subsystemname", "logs", "Coralogix subsystem name",
     "https://coralogix.com/docs/user-guides/mcp-server/tools/logs-and-traces/"),
)  # fmt: skip


@lru_cache(maxsize=1)
def _build() -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    rng = random.Random(SEED)
    trace_pool = [_hex(rng, 16) for _ in range(1500)]
    spans = _build_spans(rng, trace_pool)
    logs = _build_logs(rng, trace_pool)
    return tuple(spans), tuple(logs)


def spans() -> tuple[dict[str, Any], ...]:
    """All synthetic spans, oldest first (built on first call)."""
    return _build()[0]


def logs() -> tuple[dict[str, Any], ...]:
    """All synthetic log records, oldest first (built on first call)."""
    return _build()[1]


def rows_for(source: str) -> tuple[dict[str, Any], ...]:
    return spans() if source == "spans" else logs()


@lru_cache(maxsize=1)
def _search_text() -> dict[int, str]:
    # Free-text search (`~ 'x'` with no field) scans every string value; pre-joining
    # and lowercasing them once per row keeps that a single substring test per row.
    out: dict[int, str] = {}
    for row in (*spans(), *logs()):
        out[id(row)] = "\n".join(str(v) for v in row.values() if isinstance(v, str)).lower()
    return out


def search_text(row: dict[str, Any]) -> str:
    text = _search_text().get(id(row))
    if text is None:
        text = "\n".join(str(v) for v in row.values() if isinstance(v, str)).lower()
    return text
