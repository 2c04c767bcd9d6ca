"""Synthetic worlds for the lab checks: the traces and host metrics a lab run would leave,
with or without a fault, for one or several attendees.

Each attendee sends one question a second for 40 s; the fault window is the second half.
A request crosses the real path (gateway → query → external-api, validation, queue →
stream → worker → processing, storage with its SQLite client spans), and an active fault
changes the spans the way the stack's fault kinds do (stack/common/faults/registry.py).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from labs.runtime.checks import CheckContext, Window
from labs.telemetry import DataPoint, Metric, Span

T0 = 1_900_000_000.0  # a fixed epoch second: worlds are deterministic
REQUESTS = 40
FAULT_FROM, FAULT_TO = 20, 40


@dataclass
class Injected:
    kind: str
    target: str
    attendee: str | None = None  # None: the whole room
    id: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = (
            self.id
            or f"{self.kind}-{abs(hash((self.kind, self.target, self.attendee))) % 0xFFFFFF:06x}"
        )

    def hits(self, attendee: str, i: int) -> bool:
        lo, hi = self.params.get("window", (FAULT_FROM, FAULT_TO))
        return lo <= i < hi and self.attendee in (None, attendee)


@dataclass
class World:
    spans: list[Span] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)

    def windows(self) -> dict[str, Window]:
        ns = lambda s: int((T0 + s) * 1e9)  # noqa: E731
        return {
            "all": Window(ns(0), ns(REQUESTS + 2)),
            "baseline": Window(ns(0), ns(FAULT_FROM)),
            "fault": Window(ns(FAULT_FROM), ns(FAULT_TO + 1)),
        }

    def context(self, attendees: list[str]) -> CheckContext:
        return CheckContext(self.spans, self.metrics, self.windows(), attendees=attendees)

    # -- the same data, as Coralogix would hold it ------------------------------------------
    def coralogix_rows(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.spans:
            tags = {
                k: (str(v) if isinstance(v, int | float) else v) for k, v in s.attributes.items()
            }
            tags["span.kind"] = s.kind.lower()
            rows.append(
                {
                    "$l": {"serviceName": s.service, "operationName": s.name},
                    "$m": {
                        "timestamp": s.start_ns,
                        "duration": s.duration_ms * 1000,  # µs
                        "traceId": s.trace_id,
                        "spanId": s.span_id,
                        "isError": s.status_code == "ERROR",
                    },
                    "$d": {
                        "tags": tags,
                        "logs": [
                            {"fields": {"event": e["name"], **e["attributes"]}} for e in s.events
                        ],
                    },
                }
            )
        return rows

    def prometheus_series(self) -> dict[str, list[tuple[float, float]]]:
        """Host metrics as the Metrics API answers the check's PromQL (rates for counters)."""
        out: dict[str, list[tuple[float, float]]] = {}
        names = {
            "system.cpu.time": "system_cpu_time_seconds_total",
            "system.memory.usage": "system_memory_usage_bytes",
            "system.network.io": "system_network_io_bytes_total",
        }
        for m in self.metrics:
            pts = sorted(
                (dp.time_ns / 1e9, float(dp.value or 0))
                for dp in m.data_points
                if dp.attributes.get("state") not in ("idle", "free")
            )
            if m.type == "sum":  # a rate between consecutive samples
                by_t: dict[float, float] = {}
                for t, v in pts:
                    by_t[t] = by_t.get(t, 0.0) + v
                ts = sorted(by_t)
                pts = [(b, (by_t[b] - by_t[a]) / (b - a)) for a, b in itertools.pairwise(ts)]
            out[names[m.name]] = pts
        return out


_ids = itertools.count(1)


def _span(
    trace: str,
    parent: str,
    service: str,
    name: str,
    kind: str,
    start: float,
    ms: float,
    attendee: str,
    **attrs: Any,
) -> Span:
    sid = f"{next(_ids):016x}"
    return Span(
        trace_id=trace,
        span_id=sid,
        parent_span_id=parent,
        name=name,
        kind=kind,
        service=service,
        start_ns=int(start * 1e9),
        end_ns=int((start + ms / 1000) * 1e9),
        duration_ms=ms,
        status_code="UNSET",
        attributes={"workshop.attendee": attendee, **attrs},
    )


def build(
    attendees: list[str], faults: list[Injected] | None = None, *, requests: int = REQUESTS
) -> World:
    faults = faults or []
    w = World()
    for a_idx, attendee in enumerate(attendees):
        for i in range(requests):
            active = [f for f in faults if f.hits(attendee, i)]
            _request(w, attendee, T0 + i + a_idx * 0.01, i, active)
    _host_metrics(w, [f for f in faults if True])
    return w


def _extra(
    active: list[Injected], kind: str, target: str, default: float
) -> tuple[float, list[Injected]]:
    hit = [f for f in active if f.kind == kind and f.target == target]
    return (sum(f.params.get("ms", default) for f in hit), hit)


def _mark(span: Span, faults: list[Injected]) -> None:
    for f in faults:
        span.events.append(
            {
                "name": "fault.injected",
                "time_ns": span.start_ns,
                "attributes": {"fault.id": f.id, "fault.kind": f.kind, "fault.target": f.target},
            }
        )


def _request(w: World, attendee: str, t: float, i: int, active: list[Injected]) -> None:
    trace = f"{next(_ids):032x}"
    base = {
        "query-service": 8.0,
        "external-api-service": 60.0,
        "validation-service": 3.0,
        "queue-service": 2.0,
        "processing-service": 40.0,
        "storage-service": 6.0,
    }
    extra: dict[str, float] = {}
    marks: dict[str, list[Injected]] = {}
    for svc in base:
        ms, hit = _extra(active, "latency", svc, 400)
        burn, burn_hit = _extra(active, "cpu_burn", svc, 150)
        extra[svc], marks[svc] = ms + burn, hit + burn_hit
    slow_db = [f for f in active if f.kind == "slow_db"]
    redis_slow = [f for f in active if f.kind == "redis_latency"]
    stall = [f for f in active if f.kind == "queue_stall"]
    gw_ms, gw_hit = _extra(active, "latency", "api-gateway", 400)

    spans: list[Span] = []
    q_ms = base["query-service"] + extra["query-service"]
    x_ms = base["external-api-service"] + extra["external-api-service"]
    v_ms = base["validation-service"] + extra["validation-service"]
    qu_ms = base["queue-service"] + extra["queue-service"]
    llm_limited = [f for f in active if f.kind == "llm_rate_limit"] if i % 5 < 3 else []
    errored = [f for f in active if f.kind == "error" and i % f.params.get("every", 2) == 0]
    errored_q = [f for f in errored if f.target == "queue-service"]
    errored = [f for f in errored if f.target == "validation-service"]
    if llm_limited:
        q_ms += 1000 + x_ms  # waits Retry-After, asks again
    r_ms = 1.0 + sum(f.params.get("ms", 100) for f in redis_slow)
    front = q_ms + v_ms + qu_ms + r_ms + 2 + gw_ms
    gw = _span(
        trace,
        "",
        "api-gateway",
        "POST /api/queries",
        "SERVER",
        t,
        front,
        attendee,
        **{"http.request.method": "POST", "http.response.status_code": 202},
    )
    _mark(gw, gw_hit)
    spans.append(gw)
    spans.append(
        _span(
            trace,
            gw.span_id,
            "api-gateway",
            "GET",
            "CLIENT",
            t + 0.0002,
            r_ms,
            attendee,
            **{"db.system": "redis", "db.operation.name": "GET"},
        )
    )
    qs = _span(
        trace,
        gw.span_id,
        "query-service",
        "POST /generate",
        "SERVER",
        t + 0.001,
        q_ms,
        attendee,
        **{"http.response.status_code": 200},
    )
    _mark(qs, marks["query-service"])
    spans.append(qs)
    xs = _span(
        trace,
        qs.span_id,
        "external-api-service",
        "POST /v1/chat/completions",
        "SERVER",
        t + 0.002,
        x_ms,
        attendee,
        **{"http.response.status_code": 429 if llm_limited else 200},
    )
    _mark(xs, marks["external-api-service"] + llm_limited)
    spans.append(xs)
    if llm_limited:
        qs.events.append(
            {
                "name": "retry",
                "time_ns": xs.end_ns,
                "attributes": {"http.response.status_code": 429, "retry.attempt": 1},
            }
        )
    vt = t + 0.001 + q_ms / 1000
    status = int(errored[0].params.get("status", 503)) if errored else 200
    vs = _span(
        trace,
        gw.span_id,
        "validation-service",
        "POST /validate",
        "SERVER",
        vt,
        v_ms,
        attendee,
        **{"http.response.status_code": status},
    )
    if errored:
        vs.status_code = "ERROR"
        gw.attributes["http.response.status_code"] = 502
        gw.status_code = "ERROR"
    _mark(vs, marks["validation-service"] + errored)
    spans.append(vs)
    w.spans.extend(spans)
    if errored:
        return
    qt = vt + v_ms / 1000
    qsp = _span(
        trace,
        gw.span_id,
        "queue-service",
        "POST /jobs",
        "SERVER",
        qt,
        qu_ms,
        attendee,
        **{"http.response.status_code": 503 if errored_q else 202},
    )
    _mark(qsp, marks["queue-service"] + errored_q)
    if errored_q:
        qsp.status_code = gw.status_code = "ERROR"
        gw.attributes["http.response.status_code"] = 502
        w.spans.append(qsp)
        return
    prod = _span(
        trace,
        qsp.span_id,
        "queue-service",
        "send stream:jobs",
        "PRODUCER",
        qt + 0.0005,
        1.0,
        attendee,
        **{"messaging.system": "redis"},
    )
    wait_ms = 2.0 + (3000.0 if stall else 0.0)
    ct = prod.start_ns / 1e9 + wait_ms / 1000
    p_ms = base["processing-service"] + extra["processing-service"]
    insert_ms = 1.0 + (600.0 if slow_db else 0.0)
    s_ms = base["storage-service"] + extra["storage-service"] + insert_ms + 3.0
    cons = _span(
        trace,
        prod.span_id,
        "queue-worker",
        "process stream:jobs",
        "CONSUMER",
        ct,
        p_ms + s_ms + 2,
        attendee,
        **{"messaging.system": "redis", "workshop.queue.wait_ms": wait_ms},
    )
    _mark(cons, stall)
    ps = _span(
        trace,
        cons.span_id,
        "processing-service",
        "POST /process",
        "SERVER",
        ct + 0.001,
        p_ms,
        attendee,
        **{"http.response.status_code": 200},
    )
    _mark(ps, marks["processing-service"])
    st = ct + 0.001 + p_ms / 1000
    ss = _span(
        trace,
        cons.span_id,
        "storage-service",
        "POST /results",
        "SERVER",
        st,
        s_ms,
        attendee,
        **{"http.response.status_code": 201},
    )
    _mark(ss, marks["storage-service"] + slow_db)
    db = {"db.system": "sqlite", "db.namespace": "feedback"}
    ins = _span(
        trace,
        ss.span_id,
        "storage-service",
        "INSERT",
        "CLIENT",
        st + 0.001,
        insert_ms,
        attendee,
        **db,
        **{"db.operation.name": "INSERT"},
    )
    sel = _span(
        trace,
        ss.span_id,
        "storage-service",
        "SELECT",
        "CLIENT",
        st + 0.002,
        3.0,
        attendee,
        **db,
        **{"db.operation.name": "SELECT"},
    )
    w.spans.extend([qsp, prod, cons, ps, ss, ins, sel])


def _host_metrics(w: World, faults: list[Injected]) -> None:
    """Host metrics every 2 s: CPU time by state (a counter), memory used, network bytes."""
    burn = any(f.kind == "cpu_burn" for f in faults)
    leak = any(f.kind == "memory_leak" for f in faults)
    cpu_pts, mem_pts, net_pts = [], [], []
    busy = idle = net = 0.0
    for s in range(0, REQUESTS + 2, 2):
        in_fault = FAULT_FROM <= s < FAULT_TO
        busy += 2 * (0.9 if burn and in_fault else 0.3)
        idle += 2 * (1.1 if burn and in_fault else 1.7)
        net += 2 * 100_000
        t = int((T0 + s) * 1e9)
        cpu_pts += [
            DataPoint({"state": "user", "cpu": "cpu0"}, t, value=busy),
            DataPoint({"state": "idle", "cpu": "cpu0"}, t, value=idle),
        ]
        mem_pts.append(
            DataPoint({"state": "used"}, t, value=2e9 + (6e8 if leak and in_fault else 0))
        )
        net_pts.append(DataPoint({"direction": "transmit"}, t, value=net))
    host = {"host.name": "workshop-vm"}
    w.metrics = [
        Metric("system.cpu.time", "sum", "s", "", cpu_pts, host, is_monotonic=True),
        Metric("system.memory.usage", "gauge", "By", "", mem_pts, host),
        Metric("system.network.io", "sum", "By", "", net_pts, host, is_monotonic=True),
    ]
