"""The UI's telemetry endpoints under load, for `workshop bench` (and the shapes the tests use).

Measured in-process, through the gateway's real router (FastAPI + the real tracestore), over
spans shaped like the kit's own (OTLP JSON lines as the collector's file exporter writes them):

- the chart endpoint (GET /api/telemetry/red) with 15 minutes of history at 100 questions/s
  in its aggregates: p50/p95 over many calls, for everyone and for one attendee;
- the waterfall endpoint (GET /api/traces/{id}) for a 30-span trace spread over several
  large batch lines among 20 s of 100 q/s background: the first (cold) answer and the warm ones;
- the cost of reading spans while a page is open: decoded spans per CPU-second, hence the
  share of one core that 100 q/s costs while someone watches;
- with no page open: the tail thread is not running, and the gateway's CPU over an idle
  window is compared with the same window with a page polling every 3 s (live stack).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stack.common.red import RedStore
from stack.common.settings import ServiceName
from stack.common.stats import percentile
from stack.common.tracestore import TraceStore

SPANS_PER_QUESTION = 30
ENTRY_SERVICES = [s.value for s in ServiceName if s is not ServiceName.FRONTEND]


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def question_spans(
    trace_id: str,
    t0_ns: int,
    rng: random.Random,
    *,
    attendee: str | None = None,
    slow: dict[str, float] | None = None,
    fault_on: str | None = None,
    error_on: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """One question's trace as the kit emits it: 30 spans over the eight services, the Redis
    stream hop included (PRODUCER in queue-service, CONSUMER in queue-worker)."""
    slow = slow or {}
    out: list[tuple[str, dict[str, Any]]] = []
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(64))

    def span(
        service: str, name: str, kind: int, parent: str, start: float, ms: float, **attrs: Any
    ) -> str:
        sid = next(ids)
        base = {"workshop.session": "s-bench"}
        if attendee:
            base["workshop.attendee"] = attendee
        s: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": sid,
            "parentSpanId": parent,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(int(t0_ns + start * 1e6)),
            "endTimeUnixNano": str(int(t0_ns + (start + ms) * 1e6)),
            "attributes": [_kv(k, v) for k, v in {**base, **attrs}.items()],
            "status": {},
        }
        if service == error_on and kind == 2:
            s["status"] = {"code": 2, "message": "injected"}
        if service == fault_on and kind in (2, 5):
            s["events"] = [
                {
                    "timeUnixNano": str(int(t0_ns + start * 1e6)),
                    "name": "fault.injected",
                    "attributes": [_kv("fault.id", "latency-bench"), _kv("fault.kind", "latency")],
                }
            ]
        out.append((service, s))
        return sid

    def http(service: str, route: str, method: str = "POST", status: int = 200) -> dict[str, Any]:
        return {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status,
            "url.scheme": "http",
            "server.address": "127.0.0.1",
        }

    def d(service: str, base: float) -> float:
        return base * rng.uniform(0.7, 1.4) + slow.get(service, 0.0)

    gw, q, ext, val = "api-gateway", "query-service", "external-api-service", "validation-service"
    qu, wk, pr, st = "queue-service", "queue-worker", "processing-service", "storage-service"
    t = 0.0
    q_ms, ext_ms, val_ms, qu_ms = d(q, 3.0), d(ext, 5.0), d(val, 1.5), d(qu, 1.0)
    total = 1.0 + q_ms + ext_ms + val_ms + qu_ms + 2.0
    root = span(gw, "POST /api/queries", 2, "", t, total, **http(gw, "/api/queries"))
    span(gw, "GET", 3, root, 0.1, 0.2, **{"db.system": "redis", "db.operation.name": "GET"})
    span(gw, "SET", 3, root, 0.4, 0.2, **{"db.system": "redis", "db.operation.name": "SET"})
    c = span(gw, "POST", 3, root, 0.8, q_ms + ext_ms + 0.5, **http(gw, "/generate"))
    qs = span(q, "POST /generate", 2, c, 0.9, q_ms + ext_ms + 0.3, **http(q, "/generate"))
    span(q, "GET", 3, qs, 1.0, 0.2, **{"db.system": "redis", "db.operation.name": "GET"})
    qc = span(q, "POST", 3, qs, 1.3, ext_ms + 0.2, **http(q, "/v1/chat/completions"))
    es = span(ext, "POST /v1/chat/completions", 2, qc, 1.4, ext_ms, **http(ext, "/v1/chat"))
    span(ext, "chat workshop-dataprime-1", 1, es, 1.5, ext_ms * 0.9, **{"gen_ai.system": "bench"})
    span(q, "SETEX", 3, qs, 1.5 + ext_ms, 0.2, **{"db.system": "redis"})
    t = 1.4 + q_ms + ext_ms
    vc = span(gw, "POST", 3, root, t, val_ms + 0.3, **http(gw, "/validate"))
    vs = span(val, "POST /validate", 2, vc, t + 0.1, val_ms, **http(val, "/validate"))
    span(val, "parse", 1, vs, t + 0.2, val_ms * 0.8)
    t += val_ms + 0.4
    uc = span(gw, "POST", 3, root, t, qu_ms + 0.3, **http(gw, "/jobs"))
    us = span(qu, "POST /jobs", 2, uc, t + 0.1, qu_ms, **http(qu, "/jobs"))
    prod = span(qu, "stream:jobs publish", 4, us, t + 0.2, 0.3, **{"messaging.system": "redis"})
    span(qu, "XADD", 3, prod, t + 0.25, 0.2, **{"db.system": "redis"})
    span(qu, "HSET", 3, us, t + 0.6, 0.2, **{"db.system": "redis"})
    t += qu_ms + 2.0
    pr_ms, st_ms = d(pr, 4.0), d(st, 2.0)
    cons = span(
        wk,
        "stream:jobs process",
        5,
        prod,
        t,
        pr_ms + st_ms + 3.0,
        **{"messaging.system": "redis", "messaging.operation.type": "process"},
    )
    pc = span(wk, "POST", 3, cons, t + 0.2, pr_ms + 0.4, **http(wk, "/execute"))
    ps = span(pr, "POST /execute", 2, pc, t + 0.3, pr_ms, **http(pr, "/execute"))
    span(pr, "dataprime.parse", 1, ps, t + 0.4, pr_ms * 0.2)
    span(pr, "dataprime.execute", 1, ps, t + 0.4 + pr_ms * 0.2, pr_ms * 0.7)
    span(pr, "dataprime.format", 1, ps, t + 0.4 + pr_ms * 0.9, pr_ms * 0.05)
    t += pr_ms + 0.8
    sc = span(wk, "PUT", 3, cons, t, st_ms + 0.4, **http(wk, "/results/{job_id}", "PUT"))
    ss = span(st, "PUT /results/{job_id}", 2, sc, t + 0.1, st_ms, **http(st, "/results", "PUT"))
    span(
        st,
        "INSERT",
        3,
        ss,
        t + 0.2,
        st_ms * 0.5,
        **{"db.system": "sqlite", "db.operation.name": "INSERT"},
    )
    span(st, "SELECT", 3, ss, t + 0.3 + st_ms * 0.5, st_ms * 0.2, **{"db.system": "sqlite"})
    span(wk, "HSET", 3, cons, t + st_ms + 0.6, 0.2, **{"db.system": "redis"})
    span(wk, "XACK", 3, cons, t + st_ms + 0.9, 0.2, **{"db.system": "redis"})
    assert len(out) == SPANS_PER_QUESTION, len(out)
    return out


def otlp_line(spans: list[tuple[str, dict[str, Any]]]) -> bytes:
    """One export request (a file exporter line) holding these spans, grouped by service."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for service, s in spans:
        by_service.setdefault(service, []).append(s)
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        _kv("service.name", service),
                        _kv("service.version", "1.0.0"),
                        _kv("service.namespace", "dataprime"),
                        _kv("cx.application.name", "dataprime-workshop"),
                    ]
                },
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": group}],
            }
            for service, group in by_service.items()
        ]
    }
    return orjson.dumps(doc) + b"\n"


def background_lines(
    seconds: float, qps: float, start_s: float, rng: random.Random, batch: int = 2048
) -> Iterator[bytes]:
    """`seconds` of `qps` questions as the collector would write them: batches of `batch` spans."""
    pending: list[tuple[str, dict[str, Any]]] = []
    n = int(seconds * qps)
    for i in range(n):
        t0 = int((start_s + i / qps) * 1e9)
        pending += question_spans(f"{rng.getrandbits(128):032x}", t0, rng, attendee=f"a{i % 30}")
        if len(pending) >= batch:
            yield otlp_line(pending[:batch])
            pending = pending[batch:]
    if pending:
        yield otlp_line(pending)


def fill_history(red: RedStore, now: float, seconds: int, qps: float, rng: random.Random) -> int:
    """`seconds` of `qps` questions' entry spans straight into the aggregates."""
    n = 0
    for i in range(int(seconds * qps)):
        t = now - seconds + i / qps
        attendee = f"a{i % 30}"
        for service in ENTRY_SERVICES:
            red.add(service, t, rng.lognormvariate(1.2, 0.5), rng.random() < 0.01, attendee)
            n += 1
    return n


def measure(*, qps: float = 100.0, history_s: int = 900, calls: int = 200) -> dict[str, Any]:
    """The in-process figures (no live stack needed)."""
    import asyncio

    return asyncio.run(_measure(qps=qps, history_s=history_s, calls=calls))


async def _measure(*, qps: float, history_s: int, calls: int) -> dict[str, Any]:
    import httpx
    from fastapi import FastAPI

    from stack.common.problems import install_problem_handlers
    from stack.gateway.telemetry_api import CHARTED, telemetry_router

    rng = random.Random(20)
    results: dict[str, Any] = {"qps": qps, "history_s": history_s}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        d = Path(tmp)
        store = TraceStore(d, services=CHARTED, settle_seconds=3.0, lease_seconds=3600)
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(telemetry_router(_NoFaults(), store))  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://bench")

        async def timed(url: str, **kw: Any) -> tuple[float, httpx.Response]:
            t = time.perf_counter()
            r = await client.get(url, **kw)
            return (time.perf_counter() - t) * 1000, r

        # 1. chart endpoint with 15 minutes of 100 q/s in the aggregates
        t0 = time.perf_counter()
        results["history_records"] = fill_history(store.red, time.time(), history_s, qps, rng)
        results["history_fill_s"] = round(time.perf_counter() - t0, 2)
        store.first_scan_done = True
        for label, headers, params in (
            ("everyone", {}, {}),
            ("one_attendee", {"baggage": "workshop.attendee=a7"}, {"mine": "true"}),
        ):
            times = []
            for _ in range(calls):
                ms, r = await timed("/api/telemetry/red", params=params, headers=headers)
                assert r.status_code == 200, r.text
                times.append(ms)
            results[f"red_{label}_p50_ms"] = round(statistics.median(times), 2)
            results[f"red_{label}_p95_ms"] = round(percentile(times, 0.95) or 0.0, 2)
        results["red_points"] = len(r.json()["t"])

        # 2. decode throughput (what a watched stack pays), and 3. the waterfall
        path = d / "traces.jsonl"
        start_s = time.time() - 30
        lines = list(background_lines(20, qps, start_s, rng))
        target = f"{rng.getrandbits(128):032x}"
        spans = question_spans(
            target, int((start_s + 10) * 1e9), rng, attendee="bench", fault_on="validation-service"
        )
        # The trace's services export at different moments: four different batches.
        for i, part in enumerate((spans[:8], spans[8:15], spans[15:22], spans[22:])):
            lines.insert(len(lines) * (i + 1) // 5, otlp_line(part))
        path.write_bytes(b"".join(lines))
        n_spans = sum(line.count(b'"traceId"') for line in lines)
        cpu0 = time.process_time()
        store.scan()
        cpu = time.process_time() - cpu0
        results["decode_spans"] = n_spans
        results["decode_mib"] = round(path.stat().st_size / 2**20, 1)
        results["decode_spans_per_cpu_s"] = round(n_spans / cpu) if cpu else None
        results["watched_core_share_at_qps"] = (
            round(qps * SPANS_PER_QUESTION * cpu / n_spans, 3) if n_spans else None
        )
        times = []
        for _ in range(30):
            ms, r = await timed(f"/api/traces/{target}")
            assert r.status_code == 200 and r.json()["span_count"] == SPANS_PER_QUESTION
            times.append(ms)
        results["waterfall_cold_ms"] = round(times[0], 2)
        results["waterfall_warm_p50_ms"] = round(statistics.median(times[1:]), 2)
        results["waterfall_warm_p95_ms"] = round(percentile(times[1:], 0.95) or 0.0, 2)
        results["waterfall_spans"] = r.json()["span_count"]
        results["waterfall_services"] = len(r.json()["services"])
        results["waterfall_batch_lines"] = 4
        await client.aclose()
    return results


class _NoFaults:
    """Redis stand-in for the in-process bench: an empty fault timeline (the markers cost a
    single XRANGE; the live-stack figure includes it)."""

    async def xrange(self, *_a: Any, **_k: Any) -> list[Any]:
        return []


def idle_cpu(
    gateway_pid: int, gateway_url: str, seconds: float = 20.0, lease_wait: float = 35.0
) -> dict[str, Any]:
    """Live stack: the gateway's CPU with no page open, then with one page polling the chart
    every 3 s (as the Status page does), then again after the lease ran out."""
    import psutil
    import requests

    proc = psutil.Process(gateway_pid)

    def window(poll: bool) -> tuple[float, int]:
        stop = threading.Event()

        def page() -> None:
            while not stop.is_set():
                requests.get(f"{gateway_url}/api/telemetry/red", timeout=5)
                stop.wait(3.0)

        t = threading.Thread(target=page, daemon=True) if poll else None
        c0 = sum(proc.cpu_times()[:2])
        if t:
            t.start()
        time.sleep(seconds)
        stop.set()
        if t:
            t.join()
        threads = proc.num_threads()
        return round((sum(proc.cpu_times()[:2]) - c0) / seconds * 100, 2), threads

    no_page, threads_idle = window(False)
    page_open, threads_open = window(True)
    time.sleep(lease_wait)  # the tail's lease (30 s) runs out
    after, threads_after = window(False)
    return {
        "gateway_cpu_pct_no_page": no_page,
        "gateway_cpu_pct_page_open": page_open,
        "gateway_cpu_pct_after_close": after,
        "gateway_threads_no_page": threads_idle,
        "gateway_threads_page_open": threads_open,
        "gateway_threads_after_close": threads_after,
        "window_s": seconds,
    }


if __name__ == "__main__":  # pragma: no cover - quick look: python -m workshop.bench_ui
    print(orjson.dumps(measure(), option=orjson.OPT_INDENT_2).decode())
    os._exit(0)


# ---- `workshop bench` glue: targets and the report section --------------------------------
TARGETS = {"red_p95_ms": 20.0, "waterfall_ms": 50.0, "idle_cpu_delta_pct": 0.5}


def run(gateway_pid: int, gateway_url: str, *, short: bool) -> dict[str, Any]:
    """Both halves: the in-process endpoint figures and the live gateway's idle cost."""
    # --short checks that this runs; the lease wait alone would take 35 s.
    out = measure(calls=50 if short else 200, history_s=120 if short else 900)
    out["live"] = idle_cpu(
        gateway_pid, gateway_url, seconds=3.0 if short else 20.0, lease_wait=0 if short else 35
    )
    return out


def targets(ui: dict[str, Any]) -> list[dict[str, Any]]:
    t = TARGETS
    live = ui["live"]
    delta = live["gateway_cpu_pct_after_close"] - live["gateway_cpu_pct_no_page"]
    waterfall = max(ui["waterfall_cold_ms"], ui["waterfall_warm_p95_ms"])
    return [
        {
            "key": "red_p95_ms",
            "what": f"chart endpoint p95, 15 min of history at {ui['qps']:.0f} q/s",
            "target": f"≤ {t['red_p95_ms']:.0f} ms",
            "target_value": t["red_p95_ms"],
            "measured": f"{ui['red_everyone_p95_ms']:.1f} ms",
            "ok": ui["red_everyone_p95_ms"] <= t["red_p95_ms"],
        },
        {
            "key": "waterfall_ms",
            "what": f"waterfall endpoint, {ui['waterfall_spans']}-span trace (cold, warm p95)",
            "target": f"≤ {t['waterfall_ms']:.0f} ms",
            "target_value": t["waterfall_ms"],
            "measured": f"{ui['waterfall_cold_ms']:.1f} / {ui['waterfall_warm_p95_ms']:.1f} ms",
            "ok": waterfall <= t["waterfall_ms"],
        },
        {
            "key": "idle_cpu_delta_pct",
            "what": "gateway CPU with no page open: after a page closed − before one opened",
            "target": f"≤ {t['idle_cpu_delta_pct']} % of a core",
            "target_value": t["idle_cpu_delta_pct"],
            "measured": f"{delta:+.2f} %",
            "ok": delta <= t["idle_cpu_delta_pct"]
            and live["gateway_threads_after_close"] <= live["gateway_threads_no_page"],
        },
    ]


def markdown(ui: dict[str, Any] | None) -> list[str]:
    if not ui:
        return []
    live = ui["live"]
    return [
        "## Web UI: live RED charts and trace waterfalls",
        "",
        f"In-process, through the gateway's router (`workshop/bench_ui.py`). Chart endpoint "
        f"with {ui['history_s'] // 60} minutes of {ui['qps']:.0f} q/s "
        f"({ui['history_records']} entry spans) in its aggregates, {ui['red_points']} points "
        "per series × 3 series × 8 services:",
        "",
        "| endpoint | p50 (ms) | p95 (ms) |",
        "|---|---|---|",
        f"| GET /api/telemetry/red (everyone) | {ui['red_everyone_p50_ms']} "
        f"| {ui['red_everyone_p95_ms']} |",
        f"| GET /api/telemetry/red?mine=true (one attendee) | {ui['red_one_attendee_p50_ms']} "
        f"| {ui['red_one_attendee_p95_ms']} |",
        f"| GET /api/traces/{{id}}, {ui['waterfall_spans']} spans, {ui['waterfall_services']} "
        f"services in {ui['waterfall_batch_lines']} batch lines — first (cold) | "
        f"{ui['waterfall_cold_ms']} | — |",
        f"| the same, polled again (warm) | {ui['waterfall_warm_p50_ms']} "
        f"| {ui['waterfall_warm_p95_ms']} |",
        "",
        f"Reading spans while a page is open: {ui['decode_spans']} spans ({ui['decode_mib']} MiB "
        f"of file-exporter JSON) decoded at {ui['decode_spans_per_cpu_s']} spans per CPU-second, "
        f"so {ui['qps']:.0f} q/s × 30 spans costs {ui['watched_core_share_at_qps'] * 100:.1f} % "
        "of one core *while someone watches*, nothing otherwise.",
        "",
        f"Live gateway, idle stack, {live['window_s']:.0f} s windows:",
        "",
        "| | gateway CPU % of a core | gateway threads |",
        "|---|---|---|",
        f"| no page open | {live['gateway_cpu_pct_no_page']} | {live['gateway_threads_no_page']} |",
        f"| Status page open (chart polled every 3 s) | {live['gateway_cpu_pct_page_open']} "
        f"| {live['gateway_threads_page_open']} |",
        f"| page closed, lease (30 s) over | {live['gateway_cpu_pct_after_close']} "
        f"| {live['gateway_threads_after_close']} |",
        "",
        "The span tail is a thread that exists only while a page polls; the no-page rows are "
        "the gateway's own background work (fault-state polling, metric export).",
        "",
    ]
