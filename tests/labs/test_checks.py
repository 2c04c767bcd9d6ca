"""A wrong answer makes check() say so; the right one passes (synthetic local telemetry)."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from labs.runtime import Lab, load_spec
from labs.runtime.checks import CheckContext, Window
from labs.runtime.lab import FaultRecord, LabState, compare
from labs.telemetry import DataPoint, Metric


def _span(
    trace: int,
    span: int,
    parent: int | None,
    service: str,
    name: str,
    start: float,
    ms: float,
    events=(),
):
    return service, {
        "traceId": f"{trace:032x}",
        "spanId": f"{span:016x}",
        "parentSpanId": f"{parent:016x}" if parent else "",
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(int(start * 1e9)),
        "endTimeUnixNano": str(int((start + ms / 1000) * 1e9)),
        "attributes": [{"key": "workshop.attendee", "value": {"stringValue": "tester"}}],
        "events": [
            {
                "name": "fault.injected",
                "timeUnixNano": str(int(start * 1e9)),
                "attributes": [
                    {"key": "fault.id", "value": {"stringValue": fid}},
                    {"key": "fault.kind", "value": {"stringValue": "latency"}},
                ],
            }
            for fid in events
        ],
        "status": {},
    }


def _write(dir_: Path, spans) -> None:
    lines = []
    for service, span in spans:
        lines.append(
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "resource": {
                                "attributes": [
                                    {"key": "service.name", "value": {"stringValue": service}}
                                ]
                            },
                            "scopeSpans": [{"scope": {"name": "t"}, "spans": [span]}],
                        }
                    ]
                }
            )
        )
    (dir_ / "traces.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def lab(tmp_path: Path) -> Lab:
    t0 = time.time() - 60
    spans = []
    for i in range(40):
        start = t0 + i
        faulty = i >= 20
        v_ms = 405 if faulty else 5
        tid = i + 1
        spans.append(
            _span(tid, tid * 10 + 1, None, "api-gateway", "POST /api/queries", start, 20 + v_ms)
        )
        spans.append(
            _span(
                tid,
                tid * 10 + 2,
                tid * 10 + 1,
                "query-service",
                "POST /generate",
                start + 0.001,
                10,
            )
        )
        spans.append(
            _span(
                tid,
                tid * 10 + 3,
                tid * 10 + 1,
                "validation-service",
                "POST /validate",
                start + 0.012,
                v_ms,
                ("latency-abc123",) if faulty else (),
            )
        )
    _write(tmp_path, spans)
    lab = Lab.load(
        "02",
        attendee="tester",
        telemetry_dir=tmp_path,
        state_dir=tmp_path / "state",
        gateway_url="http://127.0.0.1:9",
        env={},
    )
    lab.state = LabState(
        lab="02-latency",
        attendee="tester",
        attendees=["tester"],
        traffic_start=t0,
        traffic_end=t0 + 40,
        faults=[
            FaultRecord(
                0,
                "latency",
                "validation-service",
                "latency-abc123",
                t0 + 20,
                t0 + 40,
                "attendee",
                "tester",
            )
        ],
    )
    return lab


def test_wrong_answer_says_so(lab):
    verdict = lab.check("slow_service", "query-service")
    assert not verdict.correct
    assert "not what the telemetry shows" in verdict.message
    assert "❌" in str(verdict)
    assert verdict.observed == "validation-service"


def test_right_answer_passes(lab):
    assert lab.check("slow_service", "validation-service").correct
    assert lab.check("slow_service", "validation").correct  # the -service suffix is optional
    assert lab.check("fault_id", "latency-abc123").correct
    assert lab.solution("slow_service") == "validation-service"


def test_wrong_fault_id(lab):
    verdict = lab.check("fault_id", "latency-000000")
    assert not verdict.correct and "Hint" in verdict.message


def test_no_answer(lab):
    verdict = lab.check("slow_service", None)
    assert not verdict.correct and "no answer yet" in verdict.message


def test_compare_numbers_and_lists():
    q = load_spec("01").question("baseline_p95")
    assert compare(q, 40, 35.6) and compare(q, "50", 40) and not compare(q, 200, 40)
    q = load_spec("instructor").question("who_is_sending")
    assert compare(q, "b, a", ["a", "b"]) and not compare(q, "a", ["a", "b"])


# ---- a stall that is still on: the window's jobs have no CONSUMER span yet ------------------


def _queue_world(stalled: bool):
    """Jobs produced every 0.5 s for 20 s; in the stalled world the jobs from the fault window
    (10–20 s) are never consumed, the telemetry goes on for 6 s more (other spans)."""
    from labs.runtime.checks import CheckContext, Window
    from labs.telemetry.reader import Span

    s = 1_000_000_000
    dest = {"messaging.destination.name": "jobs"}
    spans: list[Span] = []
    for i in range(40):
        t = i * s // 2
        tid = f"{i + 1:032x}"
        spans.append(Span(tid, f"{2 * i + 1:016x}", "", "send jobs", "PRODUCER", "queue-service",
                          t, t + 1000, 0.001, "UNSET", dict(dest)))  # fmt: skip
        if not (stalled and t >= 10 * s):
            c = t + 2_000_000  # consumed 2 ms later
            spans.append(Span(tid, f"{2 * i + 2:016x}", "", "process jobs", "CONSUMER",
                              "queue-worker", c, c + 1000, 0.001, "UNSET", dict(dest)))  # fmt: skip
    spans.append(Span("f" * 32, "f" * 16, "", "GET /health", "SERVER", "api-gateway",
                      26 * s, 26 * s + 1, 0.0, "UNSET"))  # fmt: skip
    windows = {
        "all": Window(0, 30 * s),
        "baseline": Window(0, 10 * s),
        "fault": Window(10 * s, 20 * s),
    }
    return CheckContext(spans=spans, metrics=[], windows=windows)


def test_a_stall_still_on_is_seen_from_the_jobs_still_waiting():
    from labs.runtime import checks

    stalled = _queue_world(stalled=True)
    assert checks.queue_wait_ms(stalled) >= 5_000
    assert checks.where_time_went(stalled) == "waiting in the Redis stream"
    assert checks.stalled_consumer(stalled) == "queue-worker"
    healthy = _queue_world(stalled=False)
    assert checks.queue_wait_ms(healthy) < 10
    # No gateway spans in this world: it may say it cannot tell, never "the stream".
    with contextlib.suppress(checks.NoData):
        assert checks.where_time_went(healthy) != "waiting in the Redis stream"
    with pytest.raises(checks.NoData):
        checks.stalled_consumer(healthy)


def _host_world(startup_cores: float) -> CheckContext:
    """Lab 05 in short mode on a 2-core host, 5 s host samples: the load generator starts in
    the first sample (``startup_cores`` busy, almost no traffic yet), a steady baseline of 0.8
    cores and 60 kB/s, then the burn: 1.6 cores (the host is near saturation) and 80 kB/s."""
    s = 1_000_000_000
    # (end of the 5 s interval, busy cores, network bytes/s) — samples at -1, 4, 9, …
    intervals = [(4, startup_cores, 10_000), (9, 0.8, 60_000), (14, 0.8, 60_000),
                 (19, 1.6, 80_000), (24, 1.6, 80_000), (29, 1.6, 80_000)]  # fmt: skip
    busy = net = 0.0
    cpu = [DataPoint({"state": "user", "cpu": "cpu0"}, -1 * s, value=0.0)]
    io = [DataPoint({"direction": "transmit"}, -1 * s, value=0.0)]
    for end, cores, bps in intervals:
        busy, net = busy + 5 * cores, net + 5 * bps
        cpu.append(DataPoint({"state": "user", "cpu": "cpu0"}, end * s, value=busy))
        io.append(DataPoint({"direction": "transmit"}, end * s, value=net))
    host = {"host.name": "workshop-vm"}
    metrics = [
        Metric("system.cpu.time", "sum", "s", "", cpu, host, is_monotonic=True),
        Metric("system.network.io", "sum", "By", "", io, host, is_monotonic=True),
    ]
    windows = {"all": Window(0, 30 * s), "baseline": Window(0, 14 * s),
               "fault": Window(14 * s, 30 * s)}  # fmt: skip
    return CheckContext(spans=[], metrics=metrics, windows=windows)


def test_the_load_generators_start_up_is_not_the_host_baseline():
    """Counted in the baseline, the start-up's busy cores (and its missing traffic) would
    make the network look like it rose more than the CPU (×1.75 against ×1.70 here)."""
    from labs.runtime import checks

    candidates = ["system.cpu.time", "system.memory.usage", "system.network.io"]
    assert checks.metric_rose(_host_world(startup_cores=1.3), candidates) == "system.cpu.time"
    # The whole baseline (no settle) is what gave the wrong answer.
    ctx = _host_world(startup_cores=1.3)
    whole = ctx.window("baseline")
    cpu = checks._metric_level(ctx, "system.cpu.time", ctx.window("fault")) / (
        checks._metric_level(ctx, "system.cpu.time", whole) or 1
    )
    net = checks._metric_level(ctx, "system.network.io", ctx.window("fault")) / (
        checks._metric_level(ctx, "system.network.io", whole) or 1
    )
    assert net > cpu
    # And it can still fail: no burn, nothing rose.
    calm = _host_world(startup_cores=1.3)
    for m in calm.metrics:
        base = m.data_points[3].value or 0.0
        for i, dp in enumerate(m.data_points[4:], start=4):
            dp.value = base + (i - 3) * (base - (m.data_points[2].value or 0.0))
    with pytest.raises(checks.NoData):
        checks.metric_rose(calm, candidates)


def test_a_short_baseline_is_kept_whole():
    from labs.runtime.checks import SETTLE_S, settled

    s = 1_000_000_000
    assert settled(Window(0, 6 * s)) == Window(0, 6 * s)
    assert settled(Window(0, 14 * s)) == Window(int(SETTLE_S * s), 14 * s)
