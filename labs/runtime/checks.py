"""Local checks: each question's answer computed from local telemetry (``labs.telemetry``).

Every check is ``fn(ctx, **args) -> answer`` where ``ctx`` holds the spans/metrics of the lab's
run split into windows (``baseline`` before the first fault, ``fault`` while faults were
active, ``all``). The Coralogix side asks the same question with a DataPrime query; the
verdict compares the learner's answer with whichever answer the data gave.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from labs.telemetry import Metric, Span
from stack.common.stats import percentile

ROOT_SERVICE = "api-gateway"


class NoData(RuntimeError):
    """The telemetry does not hold enough data to answer (yet)."""


@dataclass
class Window:
    start_ns: int
    end_ns: int


# The first seconds of a lab's traffic are not its baseline for host metrics: starting the load
# generator is host work too. Measured in the Docker lane (lab 05, short mode, 5 s host
# samples): 1.24 busy cores in the sample at traffic start (Locust's start-up), 0.75 in the
# next; in a 6 s baseline that start-up hid a 300 ms/request CPU burn.
SETTLE_S = 4.0


def settled(baseline: Window, settle_s: float = SETTLE_S) -> Window:
    """The baseline without its first ``settle_s`` seconds (whole if that would leave less)."""
    start = baseline.start_ns + int(settle_s * 1e9)
    return Window(start, baseline.end_ns) if baseline.end_ns - start >= settle_s * 1e9 else baseline


@dataclass
class CheckContext:
    spans: list[Span]
    metrics: list[Metric]
    windows: dict[str, Window]
    attendees: list[str] = field(default_factory=list)

    def window(self, name: str) -> Window:
        if name not in self.windows:
            raise NoData(f"this lab has no {name!r} window (run the traffic first)")
        return self.windows[name]

    def spans_in(self, name: str = "all") -> list[Span]:
        w = self.window(name)
        picked = [s for s in self.spans if w.start_ns <= s.start_ns < w.end_ns]
        if self.attendees:
            mine = {
                s.trace_id
                for s in picked
                if s.attributes.get("workshop.attendee") in self.attendees
            }
            picked = [s for s in picked if s.trace_id in mine]
        return picked

    def points_in(self, metric: str, name: str = "all") -> list[tuple[int, float, Metric]]:
        w = self.window(name)
        out = []
        for m in self.metrics:
            if m.name != metric:
                continue
            for dp in m.data_points:
                if w.start_ns <= dp.time_ns < w.end_ns:
                    value = dp.value if dp.value is not None else dp.sum
                    if value is not None:
                        out.append((dp.time_ns, float(value), m))
        return out


def _mode(values: Iterable[Any], what: str) -> Any:
    counts = Counter(v for v in values if v is not None)
    if not counts:
        raise NoData(f"no {what} in the telemetry window yet")
    return counts.most_common(1)[0][0]


def _self_ms(spans: list[Span]) -> dict[str, float]:
    """Self time of each span: its duration minus its direct children's (clamped at 0)."""
    child_ms: dict[str, float] = defaultdict(float)
    for s in spans:
        if s.parent_span_id:
            child_ms[s.parent_span_id] += s.duration_ms
    return {s.span_id: max(0.0, s.duration_ms - child_ms.get(s.span_id, 0.0)) for s in spans}


# ------------------------------------------------------------------------------- checks


def root_service(ctx: CheckContext, window: str = "all") -> str:
    """The service whose span starts every trace."""
    return _mode((s.service for s in ctx.spans_in(window) if not s.parent_span_id), "root spans")


def services_count(ctx: CheckContext, window: str = "all") -> int:
    """How many distinct services emitted spans for the traffic."""
    services = {s.service for s in ctx.spans_in(window) if s.service}
    if not services:
        raise NoData("no spans in the window yet")
    return len(services)


def first_downstream(
    ctx: CheckContext, operation: str = "POST /api/queries", window: str = "all"
) -> str:
    """For traces rooted at ``operation``, the first other service to get a server span."""
    spans = ctx.spans_in(window)
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    firsts = []
    for group in by_trace.values():
        root = next((s for s in group if not s.parent_span_id), None)
        if root is None or root.name != operation:
            continue
        others = sorted(
            (s for s in group if s.service != root.service and s.kind == "SERVER"),
            key=lambda s: s.start_ns,
        )
        if others:
            firsts.append(others[0].service)
    return _mode(firsts, f"traces of {operation}")


def consumer_service(ctx: CheckContext, window: str = "all") -> str:
    """The service with CONSUMER spans (reads the Redis stream)."""
    return _mode(
        (s.service for s in ctx.spans_in(window) if s.kind == "CONSUMER"), "consumer spans"
    )


def p95_ms(
    ctx: CheckContext,
    service: str = ROOT_SERVICE,
    operation: str | None = None,
    window: str = "all",
) -> float:
    """p95 (ms) of a service's server spans (optionally one operation)."""
    values = [
        s.duration_ms
        for s in ctx.spans_in(window)
        if s.service == service
        and s.kind == "SERVER"
        and (operation is None or s.name == operation)
    ]
    if len(values) < 3:
        raise NoData(f"fewer than 3 {service} server spans in the {window} window")
    return round(float(percentile(values, 0.95) or 0.0), 1)


def slowest_growth_service(
    ctx: CheckContext,
    exclude: list[str] | None = None,
    min_samples: int = 3,
    min_growth_ms: float = 50.0,
) -> str:
    """The service whose own work (span self time) grew most from the baseline to the fault.

    Per (service, span name): p95 of self time in each window; the largest growth wins. Self
    time keeps callers (whose spans merely wrap a slow callee) out of the answer.
    """
    exclude = exclude or []

    def p95_by_op(window: str) -> dict[tuple[str, str], float]:
        spans = ctx.spans_in(window)
        self_ms = _self_ms(spans)
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for s in spans:
            if s.service not in exclude:
                groups[(s.service, s.name)].append(self_ms[s.span_id])
        return {k: percentile(v, 0.95) or 0.0 for k, v in groups.items() if len(v) >= min_samples}

    before, during = p95_by_op("baseline"), p95_by_op("fault")
    growth = {k: during[k] - before[k] for k in during if k in before}
    if not growth:
        raise NoData("not enough spans in both the baseline and the fault windows")
    (service, _op), grew = max(growth.items(), key=lambda kv: kv[1])
    if grew < min_growth_ms:
        # Nothing got slower: naming the "least unchanged" service would be a guess.
        raise NoData(f"no service's own work grew by {min_growth_ms:.0f} ms or more")
    return service


def fault_event_id(ctx: CheckContext, kind: str | None = None, window: str = "all") -> str:
    """The fault.id carried by `fault.injected` span events (most frequent)."""
    ids = [
        e["attributes"].get("fault.id")
        for s in ctx.spans_in(window)
        for e in s.events
        if e.get("name") == "fault.injected"
        and (kind is None or e["attributes"].get("fault.kind") == kind)
    ]
    return _mode(ids, "fault.injected events")


def status_service(ctx: CheckContext, status: int = 503, window: str = "fault") -> str:
    """The service whose server spans answered ``status`` most often."""
    return _mode(
        (
            s.service
            for s in ctx.spans_in(window)
            if s.kind == "SERVER" and s.attributes.get("http.response.status_code") == status
        ),
        f"server spans with status {status}",
    )


def error_ratio(ctx: CheckContext, service: str = ROOT_SERVICE, window: str = "fault") -> float:
    """Share of a service's server spans with ERROR status."""
    spans = [s for s in ctx.spans_in(window) if s.service == service and s.kind == "SERVER"]
    if not spans:
        raise NoData(f"no {service} server spans in the {window} window")
    return round(sum(s.is_error for s in spans) / len(spans), 3)


def retry_event_service(ctx: CheckContext, window: str = "fault") -> str:
    """The service whose spans carry `retry` events."""
    return _mode(
        (s.service for s in ctx.spans_in(window) for e in s.events if e.get("name") == "retry"),
        "retry span events",
    )


def retry_status(ctx: CheckContext, window: str = "fault") -> int:
    """The HTTP status recorded on `retry` span events."""
    return _mode(
        (
            e["attributes"].get("http.response.status_code")
            for s in ctx.spans_in(window)
            for e in s.events
            if e.get("name") == "retry"
        ),
        "retry span events with a status",
    )


def gateway_degraded(
    ctx: CheckContext,
    operation: str = "POST /api/queries",
    factor: float = 2.0,
    slack_ms: float = 100.0,
) -> str:
    """ "yes" if the gateway's p95 for ``operation`` grew past factor×baseline + slack."""
    before = p95_ms(ctx, ROOT_SERVICE, operation, "baseline")
    during = p95_ms(ctx, ROOT_SERVICE, operation, "fault")
    return "yes" if during > before * factor + slack_ms else "no"


def metric_grew(ctx: CheckContext, candidates: list[str], min_growth: float = 1.0) -> str:
    """The first candidate metric whose peak during the fault exceeds its baseline peak."""
    for name in candidates:
        during = [v for _t, v, _m in ctx.points_in(name, "fault")]
        before = [v for _t, v, _m in ctx.points_in(name, "baseline")]
        if during and max(during) >= (max(before) if before else 0.0) + min_growth:
            return name
    raise NoData(f"none of {candidates} grew during the fault (metrics export every few seconds)")


def _metric_level(ctx: CheckContext, name: str, w: Window) -> float | None:
    """A metric's level in a window: for a cumulative sum the mean rate per second (summed
    over series, ``idle`` states left out), for a gauge the mean of its points (``used``
    state when states exist). None without data."""
    series: dict[tuple[Any, ...], list[tuple[int, float]]] = defaultdict(list)
    cumulative = False
    for m in ctx.metrics:
        if m.name != name:
            continue
        cumulative = cumulative or (m.type == "sum" and bool(m.is_monotonic))
        for dp in m.data_points:
            state = dp.attributes.get("state")
            if state == "idle" or (m.type != "sum" and state not in (None, "used")):
                continue
            value = dp.value if dp.value is not None else dp.sum
            if value is not None:
                key = (tuple(sorted(dp.attributes.items())), tuple(sorted(m.resource.items())))
                series[key].append((dp.time_ns, float(value)))
    if not cumulative:
        values = [v for pts in series.values() for t, v in pts if w.start_ns <= t < w.end_ns]
        if not values:
            return None
        # Summed over series at each instant ≈ mean per series × series count.
        n = sum(1 for pts in series.values() if any(w.start_ns <= t < w.end_ns for t, _ in pts))
        return sum(values) / len(values) * n
    # A counter's rate over the window: each sampling interval's rate, weighted by how much of
    # the interval lies inside the window. A window shorter than the host-metric interval (a 6 s
    # baseline in short mode, 10 s samples) still gets the rate of the samples around it, and an
    # interval that straddles the fault's start counts only for its share.
    total, found = 0.0, False
    for pts in series.values():
        pts.sort()
        weighted = overlap_sum = 0.0
        for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False):
            overlap = min(t1, w.end_ns) - max(t0, w.start_ns)
            if t1 <= t0 or overlap <= 0 or v1 < v0:  # v1 < v0: the counter was reset
                continue
            weighted += (v1 - v0) / ((t1 - t0) / 1e9) * overlap
            overlap_sum += overlap
        if overlap_sum:
            total += weighted / overlap_sum
            found = True
    return total if found else None


def metric_rose(ctx: CheckContext, candidates: list[str], min_ratio: float = 1.3) -> str:
    """The candidate host metric that rose most from the settled baseline to the fault window
    (at least ×``min_ratio``): counters compared by rate, gauges by level."""
    best: tuple[float, str] | None = None
    base, fault = settled(ctx.window("baseline")), ctx.window("fault")
    for name in candidates:
        before = _metric_level(ctx, name, base)
        during = _metric_level(ctx, name, fault)
        if before is None or during is None or before <= 0:
            continue
        ratio = during / before
        if ratio >= min_ratio and (best is None or ratio > best[0]):
            best = (ratio, name)
    if best is None:
        raise NoData(f"none of {candidates} rose by ×{min_ratio} during the fault window")
    return best[1]


def metric_present(ctx: CheckContext, candidates: list[str], window: str = "fault") -> str:
    """The first candidate metric with data points in the window."""
    for name in candidates:
        if ctx.points_in(name, window):
            return name
    raise NoData(f"none of {candidates} has data points in the {window} window")


def slowest_db(ctx: CheckContext, attribute: str = "db.system", window: str = "fault") -> str:
    """``attribute`` of the database client span type with the largest total time."""
    totals: dict[Any, float] = defaultdict(float)
    for s in ctx.spans_in(window):
        if s.kind == "CLIENT" and "db.system" in s.attributes:
            totals[s.attributes.get(attribute)] += s.duration_ms
    if not totals:
        raise NoData("no database client spans in the window")
    return str(max(totals.items(), key=lambda kv: kv[1])[0])


def attendees_seen(
    ctx: CheckContext, window: str = "all", operation: str = "POST /api/queries"
) -> list[str]:
    """The workshop.attendee values on the spans of ``operation`` (who is asking questions)."""
    w = ctx.window(window)
    seen = {
        str(s.attributes["workshop.attendee"])
        for s in ctx.spans
        if w.start_ns <= s.start_ns < w.end_ns
        and s.attributes.get("workshop.attendee")
        and s.name == operation  # questions asked, not admin calls
    }
    if not seen:
        raise NoData("no spans with workshop.attendee in the window")
    return sorted(seen)


def fault_attendee(ctx: CheckContext, window: str = "all") -> str:
    """The workshop.attendee of the traces that carry `fault.injected` events."""
    return _mode(
        (
            s.attributes.get("workshop.attendee")
            for s in ctx.spans_in(window)
            if any(e.get("name") == "fault.injected" for e in s.events)
        ),
        "fault.injected events with an attendee",
    )


def p95_gate(
    ctx: CheckContext,
    threshold_ms: float,
    service: str = ROOT_SERVICE,
    operation: str | None = "POST /api/queries",
    window: str = "all",
) -> str:
    """ "pass" if the p95 of the operation's server spans stays under the threshold."""
    return "pass" if p95_ms(ctx, service, operation, window) < threshold_ms else "fail"


def queue_wait_ms(ctx: CheckContext, window: str = "fault") -> float:
    """p95 time (ms) jobs waited in the stream: PRODUCER span start → CONSUMER span start.

    A job produced in the window and not consumed yet is still waiting: its wait so far (up
    to the newest span in the telemetry) counts as a lower bound, so a stall that is still on
    shows as one instead of as "no data"."""
    w = ctx.window(window)
    produced = {
        s.trace_id: s.start_ns
        for s in ctx.spans_in("all")
        if s.kind == "PRODUCER" and w.start_ns <= s.start_ns < w.end_ns
    }
    consumed = {s.trace_id: s.start_ns for s in ctx.spans if s.kind == "CONSUMER"}
    waits = [(consumed[t] - p) / 1e6 for t, p in produced.items() if t in consumed]
    horizon = max((s.start_ns for s in ctx.spans), default=0)
    waiting = [(horizon - p) / 1e6 for t, p in produced.items() if t not in consumed]
    if len(waits) < 3 and waiting:
        waits += waiting
    if len(waits) < 3:
        raise NoData(
            "fewer than 3 consumed jobs from the window yet (the backlog drains after the fault)"
        )
    return round(float(percentile(waits, 0.95) or 0.0), 1)


def stalled_consumer(ctx: CheckContext, min_wait_ms: float = 1000.0, window: str = "fault") -> str:
    """The service whose CONSUMER spans started ≥ ``min_wait_ms`` after their PRODUCER span
    (the consumer that stopped taking work), so a healthy queue answers nothing.

    While the stall is still on, the window's jobs have no CONSUMER span yet: a job waiting
    ≥ ``min_wait_ms`` (up to the newest span in the telemetry) counts for the service that
    consumes its stream (``messaging.destination.name``) elsewhere in the telemetry."""
    spans = ctx.spans_in("all")
    producers = {s.trace_id: s for s in spans if s.kind == "PRODUCER"}
    w = ctx.window(window)
    consumers = [s for s in ctx.spans if s.kind == "CONSUMER"]
    consumed = {s.trace_id for s in consumers}
    owner = Counter((s.attributes.get("messaging.destination.name"), s.service) for s in consumers)
    horizon = max((s.start_ns for s in ctx.spans), default=0)

    def stream_owner(p: Span) -> str | None:
        dest = p.attributes.get("messaging.destination.name")
        ranked = [(n, svc) for (d, svc), n in owner.items() if d == dest]
        return max(ranked)[1] if ranked else None

    late = [
        s.service
        for s in consumers
        if s.trace_id in producers
        and w.start_ns <= producers[s.trace_id].start_ns < w.end_ns
        and (s.start_ns - producers[s.trace_id].start_ns) / 1e6 >= min_wait_ms
    ]
    waiting = [
        stream_owner(p)
        for t, p in producers.items()
        if t not in consumed
        and w.start_ns <= p.start_ns < w.end_ns
        and (horizon - p.start_ns) / 1e6 >= min_wait_ms
    ]
    return _mode([*late, *waiting], f"consumer spans that waited ≥ {min_wait_ms:.0f} ms")


def where_time_went(ctx: CheckContext, stall_ms: float = 1000.0) -> str:
    """Classify the fault window: waiting in the stream, in the gateway, or in the database.
    Without jobs from the window to measure, it cannot tell (NoData), rather than guess."""
    waited = queue_wait_ms(ctx, "fault")
    if waited >= stall_ms:
        return "waiting in the Redis stream"
    if gateway_degraded(ctx) == "yes":
        return "in the gateway"
    return "in the database"


CHECKS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn
    for fn in (
        root_service,
        services_count,
        first_downstream,
        consumer_service,
        p95_ms,
        slowest_growth_service,
        fault_event_id,
        status_service,
        error_ratio,
        retry_event_service,
        retry_status,
        gateway_degraded,
        metric_grew,
        metric_rose,
        metric_present,
        slowest_db,
        attendees_seen,
        fault_attendee,
        p95_gate,
        queue_wait_ms,
        stalled_consumer,
        where_time_went,
    )
}
