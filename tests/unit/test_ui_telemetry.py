"""The UI's telemetry endpoints in-process: GET /api/telemetry/red and GET /api/traces/{id}.

The gateway's real router over the real tracestore, reading OTLP JSON lines shaped like the
collector's file exporter output (workshop.bench_ui builds them as the kit's services emit
them), with a real redis-server for the fault timeline.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stack.common.faults import FaultSpec
from stack.common.faults import store as fault_store
from stack.common.faults.model import Fault
from stack.common.problems import install_problem_handlers
from stack.common.red import RedStore, bucket_of, quantile
from stack.common.tracestore import TraceStore
from stack.gateway.telemetry_api import CHARTED, settle_seconds, telemetry_router
from tests.helpers import redis_server
from workshop.bench_ui import ENTRY_SERVICES, otlp_line, question_spans

REDIS_PORT = int(os.environ.get("TEST_PORT_BASE", "18000")) + 391


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(REDIS_PORT, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture()
def env(tmp_path: Path, redis_url: str) -> Iterator[tuple[TestClient, TraceStore, Path, str]]:
    sync_redis.Redis.from_url(redis_url).flushdb()
    store = TraceStore(tmp_path, services=CHARTED, settle_seconds=1.0, poll_seconds=0.2)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(telemetry_router(aioredis.from_url(redis_url, decode_responses=True), store))
    with TestClient(app) as client:
        yield client, store, tmp_path, redis_url


def tid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def write(path: Path, *lines: bytes) -> None:
    with path.open("ab") as fh:
        for line in lines:
            fh.write(line)


# ---- RED ------------------------------------------------------------------------------------
def test_quantile_is_within_one_bucket_of_the_exact_p95() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(2, 0.8) for _ in range(5000)]
    hist: dict[int, int] = {}
    for v in values:
        hist[bucket_of(v)] = hist.get(bucket_of(v), 0) + 1
    exact = sorted(values)[int(0.95 * len(values))]
    assert abs(quantile(hist, len(values), 0.95) - exact) / exact < 0.1


def test_red_series_show_a_slow_service_and_its_errors(env) -> None:
    client, _store, d, _ = env
    rng = random.Random(2)
    now = time.time()
    lines = []
    # 60 s at 2 q/s; validation-service slow (+300 ms) in the last 20 s, storage errors there.
    for i in range(120):
        t = now - 65 + i * 0.5
        late = t > now - 25
        spans = question_spans(
            tid(rng),
            int(t * 1e9),
            rng,
            attendee="ada" if i % 2 else "bob",
            slow={"validation-service": 300.0} if late else None,
            error_on="storage-service" if late else None,
        )
        lines.append(otlp_line(spans))
    write(d / "traces.jsonl", *lines)

    body = client.get("/api/telemetry/red").json()
    if body["loading"]:  # the first request only starts the tail
        time.sleep(0.5)
        body = client.get("/api/telemetry/red").json()
    assert body["step"] == 5 and len(body["t"]) >= 170
    assert set(body["services"]) == set(ENTRY_SERVICES)
    val = body["services"]["validation-service"]
    filled = [i for i, p in enumerate(val["p95_ms"]) if p is not None]
    early, late = val["p95_ms"][filled[0]], val["p95_ms"][filled[-1]]
    assert early < 10 and late > 250, (early, late)
    assert abs(sum(val["rps"][i] for i in filled) * 5 - 120) <= 2  # every request counted once
    storage = body["services"]["storage-service"]
    assert storage["error_ratio"][filled[0]] == 0 and storage["error_ratio"][filled[-1]] == 1
    assert body["services"]["api-gateway"]["error_ratio"][filled[-1]] == 0

    mine = client.get(
        "/api/telemetry/red", params={"mine": "true"}, headers={"baggage": "workshop.attendee=ada"}
    ).json()
    assert mine["attendee"] == "ada"
    total = sum(mine["services"]["api-gateway"]["rps"]) * 5
    assert abs(total - 60) <= 1, total  # ada's half only
    nobody = client.get(
        "/api/telemetry/red",
        params={"mine": "true"},
        headers={"baggage": "workshop.attendee=carol"},
    ).json()
    assert sum(nobody["services"]["api-gateway"]["rps"]) == 0


def test_only_my_traffic_without_a_name_is_refused(env) -> None:
    client, *_ = env
    r = client.get("/api/telemetry/red", params={"mine": "true"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "mine"
    assert "workshop.attendee" in r.json()["detail"]
    assert client.get("/api/telemetry/red", params={"window": 5}).status_code == 422


def test_fault_start_and_clear_are_marked_with_kind_and_target(env) -> None:
    client, _store, _d, url = env

    async def scenario() -> tuple[str, str, str]:
        r = aioredis.from_url(url, decode_responses=True)
        everyone = Fault.create(
            FaultSpec(kind="latency", target="validation-service", params={"ms": 300})
        )
        mine = Fault.create(
            FaultSpec(
                kind="error",
                target="query-service",
                params={"status": 503},
                scope="attendee",
                scope_value="ada",
            )
        )
        other = Fault.create(
            FaultSpec(
                kind="error",
                target="query-service",
                params={"status": 503},
                scope="attendee",
                scope_value="bob",
            )
        )
        for f in (everyone, mine, other):
            await fault_store.add_fault(r, f)
        await asyncio.sleep(0.05)
        assert await fault_store.remove_fault(r, everyone.id)
        await r.aclose()
        return everyone.id, mine.id, other.id

    everyone, mine, other = asyncio.run(scenario())
    faults = {f["id"]: f for f in client.get("/api/telemetry/red").json()["faults"]}
    assert set(faults) == {everyone, mine, other}
    cleared = faults[everyone]
    assert (cleared["kind"], cleared["target"]) == ("latency", "validation-service")
    assert cleared["ended_by"] == "cleared" and cleared["end"] >= cleared["start"]
    assert faults[mine]["end"] is None  # still active
    ada = client.get(
        "/api/telemetry/red", params={"mine": "true"}, headers={"baggage": "workshop.attendee=ada"}
    ).json()
    assert {f["id"] for f in ada["faults"]} == {everyone, mine}  # not bob's


# ---- waterfall ------------------------------------------------------------------------------
def test_waterfall_of_a_question_reaches_all_eight_services(env) -> None:
    client, _store, d, _ = env
    rng = random.Random(3)
    target = tid(rng)
    spans = question_spans(
        target,
        time.time_ns() - 10**9,
        rng,
        attendee="ada",
        fault_on="processing-service",
        error_on="storage-service",
    )
    noise = [otlp_line(question_spans(tid(rng), time.time_ns(), rng)) for _ in range(5)]
    # Each service exports on its own schedule: the trace is spread over several lines.
    write(
        d / "traces.jsonl",
        noise[0],
        otlp_line(spans[:10]),
        noise[1],
        otlp_line(spans[10:20]),
        noise[2],
        otlp_line(spans[20:]),
        noise[3],
    )
    r = client.get(f"/api/traces/{target.upper()}")
    assert r.status_code == 200, r.text
    w = r.json()
    assert w["trace_id"] == target and w["span_count"] == 30
    assert w["services"] == sorted(ENTRY_SERVICES)
    assert w["spans"][0]["parent_span_id"] is None and w["spans"][0]["depth"] == 0
    assert w["spans"][0]["name"] == "POST /api/queries" and w["spans"][0]["start_ms"] == 0
    by_id = {s["span_id"]: s for s in w["spans"]}
    order = [s["span_id"] for s in w["spans"]]
    for s in w["spans"][1:]:  # tree order: every parent comes before its children
        assert order.index(s["parent_span_id"]) < order.index(s["span_id"])
        assert s["depth"] == by_id[s["parent_span_id"]]["depth"] + 1
    consumer = next(s for s in w["spans"] if s["kind"] == "CONSUMER")
    producer = by_id[consumer["parent_span_id"]]
    assert (producer["kind"], producer["service"]) == ("PRODUCER", "queue-service")
    faulted = [s for s in w["spans"] if s["fault_injected"]]
    assert [s["service"] for s in faulted] == ["processing-service"]
    assert faulted[0]["events"][0]["attributes"]["fault.kind"] == "latency"
    assert w["faults"] == ["latency:processing-service"]
    errors = [s for s in w["spans"] if s["error"]]
    assert [s["service"] for s in errors] == ["storage-service"] and w["error_count"] == 1
    assert errors[0]["attributes"]["workshop.attendee"] == "ada"
    assert errors[0]["resource"]["service.version"] == "1.0.0"


def test_unknown_trace_is_404_and_malformed_is_422(env) -> None:
    client, *_ = env
    r = client.get("/api/traces/" + "ab" * 16)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "no span of trace" in r.json()["detail"]
    for bad in ("xyz", "0" * 32, "a" * 31, "g" * 32, "a" * 33, "%20" + "a" * 32):
        r = client.get(f"/api/traces/{bad}")
        assert r.status_code == 422, (bad, r.status_code)
        assert r.json()["errors"][0]["field"] == "trace_id"


def test_a_fresh_trace_is_waiting_then_fills_in_then_completes(env) -> None:
    client, store, d, _ = env
    rng = random.Random(4)
    target = tid(rng)
    store.expect(target)  # the gateway just answered POST /api/queries
    assert client.get(f"/api/traces/{target}").json()["state"] == "waiting"
    spans = question_spans(target, time.time_ns(), rng)
    write(d / "traces.jsonl", otlp_line(spans[:12]))
    first = client.get(f"/api/traces/{target}").json()
    assert first["state"] == "arriving" and first["span_count"] == 12
    # A line still being written is not read until it is whole.
    rest = otlp_line(spans[12:])
    write(d / "traces.jsonl", rest[:50])
    assert client.get(f"/api/traces/{target}").json()["span_count"] == 12
    write(d / "traces.jsonl", rest[50:])
    assert client.get(f"/api/traces/{target}").json()["span_count"] == 30
    time.sleep(1.1)  # settle: nothing new for a while
    assert client.get(f"/api/traces/{target}").json()["state"] == "complete"


def test_rotation_loses_no_span(env) -> None:
    client, _store, d, _ = env
    rng = random.Random(5)
    target = tid(rng)
    spans = question_spans(target, time.time_ns(), rng)
    write(d / "traces.jsonl", otlp_line(spans[:15]))
    assert client.get(f"/api/traces/{target}").json()["span_count"] == 15
    write(d / "traces.jsonl", otlp_line(spans[15:20]))  # not read yet…
    (d / "traces.jsonl").rename(d / "traces-2026-12-01T10-00-00.000.jsonl")  # …then rotated
    write(d / "traces.jsonl", otlp_line(spans[20:]))
    assert client.get(f"/api/traces/{target}").json()["span_count"] == 30


def test_nothing_runs_until_a_page_asks_and_it_stops_after_the_lease(tmp_path: Path) -> None:
    write(
        tmp_path / "traces.jsonl",
        otlp_line(question_spans(tid(random.Random(6)), time.time_ns(), random.Random(6))),
    )
    store = TraceStore(tmp_path, services=CHARTED, lease_seconds=0.6, poll_seconds=0.1)
    time.sleep(0.3)
    assert store.scans == 0 and not store.tailing  # no page: no reading at all
    store.touch()
    time.sleep(0.35)
    assert store.tailing and store.scans >= 2 and store.red.records == 8
    time.sleep(0.8)
    assert not store.tailing
    scans = store.scans
    time.sleep(0.3)
    assert store.scans == scans  # lease over: no more polling


def test_settle_follows_the_sdk_batch_delay() -> None:
    assert settle_seconds({}) == 8.0
    assert settle_seconds({"OTEL_BSP_SCHEDULE_DELAY": "500"}) == 3.5


def test_red_store_forgets_bins_older_than_the_window() -> None:
    red = RedStore(step=5, history=60)
    now = time.time()
    red.add("api-gateway", now - 3600, 5.0, False, None)
    red.add("api-gateway", now - 30, 5.0, False, None)
    red.prune(now)
    out = red.series(now, settled_until=now, services=["api-gateway"])
    assert sum(out["services"]["api-gateway"]["rps"]) * 5 == 1
