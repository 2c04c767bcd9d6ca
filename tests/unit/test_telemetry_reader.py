"""labs.telemetry on hand-made OTLP JSON lines: rotation, truncation, summaries, waterfall."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from labs.telemetry import (
    TraceSummary,
    load_logs,
    load_metrics,
    load_spans,
    trace_spans,
    traces,
    traces_table,
    waterfall_figure,
    waterfall_text,
)

T0 = 1_700_000_000_000_000_000  # ns
TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"


def kv(key: str, value: object) -> dict:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def span(trace, sid, parent, name, start_ms, dur_ms, *, kind=2, error=False, attrs=None, events=()):
    return {
        "traceId": trace,
        "spanId": sid,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(T0 + int(start_ms * 1e6)),
        "endTimeUnixNano": str(T0 + int((start_ms + dur_ms) * 1e6)),
        "attributes": [kv(k, v) for k, v in (attrs or {}).items()],
        "events": list(events),
        "status": {"code": 2, "message": "boom"} if error else {},
    }


def traces_line(service: str, *spans: dict) -> str:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [kv("service.name", service), kv("cx.subsystem.name", service)]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
            }
        ]
    }
    return json.dumps(doc)


@pytest.fixture
def telemetry_dir(tmp_path: Path) -> Path:
    # Rotated backup (older): trace A's gateway root span.
    backup = tmp_path / "traces-2024-01-01T00-00-00.000.jsonl"
    backup.write_text(
        traces_line(
            "api-gateway",
            span(
                TRACE_A,
                "a000000000000001",
                "",
                "POST /api/queries",
                0,
                120,
                attrs={"workshop.attendee": "alice", "http.request.method": "POST"},
            ),
        )
        + "\n"
    )
    os.utime(backup, (1, 1))
    # Active file: trace A's children (one error with a fault event), trace B, then a
    # partially written last line.
    fault = {
        "name": "fault.injected",
        "timeUnixNano": str(T0),
        "attributes": [kv("fault.id", "f1"), kv("fault.kind", "latency")],
    }
    active = tmp_path / "traces.jsonl"
    active.write_text(
        traces_line(
            "query-service",
            span(TRACE_A, "a000000000000002", "a000000000000001", "translate", 10, 50),
            span(
                TRACE_A,
                "a000000000000003",
                "a000000000000002",
                "redis GET",
                15,
                5,
                kind=3,
                error=True,
                events=[fault],
            ),
        )
        + "\n\n"
        + traces_line(
            "validation-service",
            span(
                TRACE_B,
                "b000000000000001",
                "",
                "POST /validate",
                5000,
                8,
                attrs={"workshop.attendee": "bob"},
            ),
        )
        + "\n"
        + traces_line("api-gateway", span(TRACE_B, "b000000000000009", "", "x", 0, 1))[:57]
    )
    metrics = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [kv("service.name", "api-gateway")]},
                "scopeMetrics": [
                    {
                        "scope": {"name": "spanmetricsconnector"},
                        "metrics": [
                            {
                                "name": "calls",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "attributes": [kv("span.name", "GET /")],
                                            "timeUnixNano": str(T0),
                                            "asInt": "7",
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "duration",
                                "unit": "ms",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(T0),
                                            "count": "3",
                                            "sum": 12.5,
                                            "bucketCounts": ["1", "2", "0"],
                                            "explicitBounds": [2, 5],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "system.memory.utilization",
                                "gauge": {
                                    "dataPoints": [{"timeUnixNano": str(T0), "asDouble": 0.42}]
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }
    (tmp_path / "metrics.jsonl").write_text(json.dumps(metrics) + '\n{"resourceMetr')
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [kv("service.name", "queue-worker")]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(T0),
                                "severityNumber": 17,
                                "body": {"stringValue": "job failed"},
                                "traceId": TRACE_A,
                                "spanId": "a000000000000003",
                                "attributes": [kv("job.id", "j1")],
                            },
                            {
                                "observedTimeUnixNano": str(T0),
                                "severityText": "INFO",
                                "severityNumber": 9,
                                "body": {"kvlistValue": {"values": [kv("msg", "hi")]}},
                            },
                        ]
                    }
                ],
            }
        ]
    }
    (tmp_path / "logs.jsonl").write_text(json.dumps(logs) + "\n")
    (tmp_path / "logs-2024-01-01T00-00-00.000.jsonl").write_text("")
    (tmp_path / "entities.jsonl").write_text("not read\n")
    return tmp_path


def test_load_spans_reads_rotated_and_skips_truncated_line(telemetry_dir: Path) -> None:
    spans = load_spans(telemetry_dir)
    assert len(spans) == 4  # 1 in the backup + 3 complete in the active file
    assert spans[0].name == "POST /api/queries"  # backup (older) read first
    root = spans[0]
    assert root.trace_id == TRACE_A and root.parent_span_id == ""
    assert root.service == "api-gateway" and root.kind == "SERVER"
    assert root.duration_ms == pytest.approx(120)
    assert root.attributes["workshop.attendee"] == "alice"
    assert root.resource["cx.subsystem.name"] == "api-gateway"
    redis = next(s for s in spans if s.name == "redis GET")
    assert redis.kind == "CLIENT" and redis.status_code == "ERROR" and redis.is_error
    assert redis.events[0]["name"] == "fault.injected"
    assert redis.events[0]["attributes"] == {"fault.id": "f1", "fault.kind": "latency"}


def test_missing_directory_is_empty(tmp_path: Path) -> None:
    assert load_spans(tmp_path / "nope") == []
    assert load_metrics(tmp_path) == []


def test_trace_summaries_and_filters(telemetry_dir: Path) -> None:
    spans = load_spans(telemetry_dir)
    all_traces = traces(spans)
    assert [t.trace_id for t in all_traces] == [TRACE_B, TRACE_A]  # newest first
    a = all_traces[1]
    assert (a.root_name, a.root_service) == ("POST /api/queries", "api-gateway")
    assert a.span_count == 3 and a.error and a.attendee == "alice"
    assert a.services == ("api-gateway", "query-service")
    assert a.duration_ms == pytest.approx(120)
    assert a.start.year == 2023
    assert [t.trace_id for t in traces(spans, errors=True)] == [TRACE_A]
    assert [t.trace_id for t in traces(spans, attendee="bob")] == [TRACE_B]
    assert [t.trace_id for t in traces(spans, service="query-service")] == [TRACE_A]
    assert [t.trace_id for t in traces(spans, min_ms=100)] == [TRACE_A]
    assert len(traces(spans, limit=1)) == 1
    assert [s.name for s in trace_spans(spans, TRACE_A[:8])] == [
        "POST /api/queries",
        "translate",
        "redis GET",
    ]
    assert trace_spans(spans, "ffff") == []


def test_waterfall_text_renders_tree_with_bars(telemetry_dir: Path) -> None:
    spans = trace_spans(load_spans(telemetry_dir), TRACE_A)
    console = Console(width=160, record=True, color_system="truecolor")
    console.print(waterfall_text(spans))
    text = console.export_text(clear=False)
    lines = text.splitlines()
    row = {
        name: next(line for line in lines if name in line)
        for name in ("POST /api/queries", "translate", "redis GET")
    }
    # indentation follows the parent chain
    assert row["translate"].index("translate") > row["POST /api/queries"].index("POST")
    assert row["redis GET"].index("redis GET") > row["translate"].index("translate")
    assert "█" in row["POST /api/queries"] and "⚡" in row["redis GET"]
    assert "+10.0 ms" in row["translate"] and "120.0 ms" in row["POST /api/queries"]
    # the error span is red
    html = console.export_html(inline_styles=True)
    redis_html = next(line for line in html.splitlines() if "redis GET" in line)
    assert "color: #800000" in redis_html


# A question's trace as the demo draws it after its latency phase: eight services, seven levels
# deep, a 400 ms fault on validation-service, then the job's spans in the trace's last 2 %.
# (service, name, parent index, start ms, duration ms)
QUESTION = [
    ("api-gateway", "POST /api/queries", None, 0.0, 473.4),
    ("api-gateway", "POST", 0, 0.8, 14.5),
    ("query-service", "POST /generate", 1, 1.5, 14.2),
    ("query-service", "GET", 2, 1.9, 3.4),
    ("query-service", "chat workshop-dataprime-1", 2, 5.6, 8.8),
    ("query-service", "POST", 4, 5.7, 8.5),
    ("external-api-service", "POST /v1/chat/completions", 5, 6.4, 7.5),
    ("query-service", "SET", 2, 14.5, 0.5),
    ("api-gateway", "POST", 0, 15.5, 452.6),
    ("validation-service", "POST /validate", 8, 67.3, 400.6),
    ("api-gateway", "POST", 0, 468.4, 3.5),
    ("queue-service", "POST /jobs", 10, 469.0, 2.8),
    ("queue-service", "send stream:jobs", 11, 469.3, 2.2),
    ("queue-service", "HSET EXPIRE XADD", 12, 469.5, 1.7),
    ("queue-worker", "process stream:jobs", 12, 471.2, 7.4),
    ("queue-worker", "HSET", 14, 471.3, 1.5),
    ("queue-worker", "POST", 14, 473.0, 1.8),
    ("processing-service", "POST /execute", 16, 473.6, 1.5),
    ("queue-worker", "PUT", 14, 475.0, 1.7),
    ("storage-service", "PUT /results/{job_id}", 18, 475.6, 1.1),
    ("storage-service", "INSERT feedback.db", 19, 476.1, 0.3),
    ("queue-worker", "HSET XACK", 14, 476.8, 1.4),
]


@pytest.fixture
def question_trace(tmp_path: Path) -> list:
    fault = {"name": "fault.injected", "timeUnixNano": str(T0), "attributes": []}
    lines = []
    for i, (service, name, parent, start, duration) in enumerate(QUESTION):
        sid, pid = f"{i + 1:016x}", "" if parent is None else f"{parent + 1:016x}"
        events = [fault] if name == "POST /validate" else ()
        lines.append(
            traces_line(service, span(TRACE_A, sid, pid, name, start, duration, events=events))
        )
    (tmp_path / "traces.jsonl").write_text("\n".join(lines) + "\n")
    return trace_spans(load_spans(tmp_path), TRACE_A)


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160])
def test_the_waterfall_fits_the_terminal_with_every_bar_and_duration(
    question_trace: list, width: int
) -> None:
    """Each row keeps its whole bar and duration at any usual width; nothing is squeezed."""
    console = Console(width=width, record=True)
    console.print(waterfall_text(question_trace, max_width=console.width))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(QUESTION) and all(len(line) <= width for line in lines)
    # the table's rows are the tree, depth first
    tree = {i: [j for j, q in enumerate(QUESTION) if q[2] == i] for i in range(len(QUESTION))}

    def walk(i: int) -> list[int]:
        return [i, *(k for j in tree[i] for k in walk(j))]

    order = walk(0)
    first_cell = []
    for row, i in zip(rows, order, strict=True):
        service, _name, _parent, _start, duration = QUESTION[i]
        cells = [c.strip() for c in row.strip("│").split("│")]
        timeline = row.rstrip("│").rsplit("│", 1)[1]
        assert f"{duration:.1f} ms" in cells, (row, duration)  # the duration, whole
        assert service.removesuffix("-service") in cells[1]
        assert timeline.strip() and "…" not in timeline, row  # a bar, not cut off
        first_cell.append(len(timeline) - len(timeline.lstrip()))
    # the bars are where the spans are: the job's spans at the right end, after the fault
    assert first_cell[order.index(14)] > first_cell[order.index(9)] > first_cell[0]
    if width >= 160:  # room for everything: full names, the offsets, nothing cut
        assert "…" not in "\n".join(lines)
        assert "+476.8 ms" in rows[-1] and "external-api-service" in "\n".join(rows)


def _summaries() -> list[TraceSummary]:
    """A listing as a lab leaves it: questions through all eight services, polls, an error."""
    services = tuple(sorted({q[0] for q in QUESTION}))
    rows = [
        ("POST /api/queries", 473.4, 22, services, False, "attendee-07"),
        ("GET /api/queries/{job_id}", 1.3, 2, ("api-gateway",), False, "attendee-07"),
        ("POST /api/queries/{job_id}/feedback", 12.9, 6, services[:3], True, "bob"),
        ("GET /api/admin/faults/catalogue", 25.4, 1, ("api-gateway",), False, None),
    ]
    return [
        TraceSummary(
            trace_id=f"{i:02x}" * 16,
            root_name=name,
            root_service="api-gateway",
            start_ns=T0 + i * 10**9,
            duration_ms=duration,
            services=names,
            span_count=count,
            error=error,
            attendee=who,
        )
        for i, (name, duration, count, names, error, who) in enumerate(rows, start=1)
    ]


@pytest.mark.parametrize("width", [80, 100, 160, 300])
@pytest.mark.parametrize("attendee", [True, False])
def test_the_trace_listing_fits_the_terminal(width: int, attendee: bool) -> None:
    """Every row keeps an id `workshop traces show` finds, its duration and span count; from
    100 columns a root operation of up to 30 cells is whole; wide terminals get everything."""
    found = _summaries()
    console = Console(width=width, record=True)
    console.print(traces_table(found, max_width=console.width, attendee=attendee))
    lines = console.export_text().splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(found) and all(len(line) <= width for line in lines)
    for row, t in zip(rows, found, strict=True):
        cells = [c.strip() for c in row.strip("│").split("│")]
        shown_id = cells[0]
        assert len(shown_id) >= 12 and t.trace_id.startswith(shown_id), row
        assert f"{t.duration_ms:.1f} ms" in cells and str(t.span_count) in cells, row
        if len(t.root_name) <= 30 and width >= 100:
            assert t.root_name in row, row
        assert t.root_name[:12] in row, row  # at 80 columns, at least its start
        assert (t.attendee or "") in cells if attendee else "attendee" not in lines[2]
    if width >= 300:  # everything: whole ids, milliseconds, the services by name
        text = "\n".join(rows)
        assert all(t.trace_id in text for t in found) and "…" not in text
        assert "external-api-service" in text and "22:13:21.000" in text


def test_waterfall_figure(telemetry_dir: Path) -> None:
    spans = trace_spans(load_spans(telemetry_dir), TRACE_A)
    fig = waterfall_figure(spans)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].endswith("POST /api/queries") and "redis GET" in labels[2]


def test_load_metrics(telemetry_dir: Path) -> None:
    metrics = {m.name: m for m in load_metrics(telemetry_dir)}
    assert set(metrics) == {"calls", "duration", "system.memory.utilization"}
    calls = metrics["calls"]
    assert calls.type == "sum" and calls.is_monotonic and calls.temporality == "CUMULATIVE"
    assert calls.data_points[0].value == 7
    assert calls.data_points[0].attributes == {"span.name": "GET /"}
    assert calls.service == "api-gateway"
    dur = metrics["duration"]
    assert dur.type == "histogram" and dur.unit == "ms"
    assert dur.data_points[0].count == 3 and dur.data_points[0].bucket_counts == [1, 2, 0]
    assert metrics["system.memory.utilization"].data_points[0].value == pytest.approx(0.42)


def test_load_logs(telemetry_dir: Path) -> None:
    logs = load_logs(telemetry_dir)
    assert len(logs) == 2
    first, second = logs
    assert first.body == "job failed" and first.severity == "ERROR"
    assert first.trace_id == TRACE_A and first.span_id == "a000000000000003"
    assert first.attributes == {"job.id": "j1"} and first.service == "queue-worker"
    assert second.severity == "INFO" and second.body == {"msg": "hi"}
    assert second.time_ns == T0


def test_workshop_traces_reads_the_stack_that_workshop_data_dir_names(
    question_trace: list, tmp_path: Path, monkeypatch
) -> None:
    """A stack beside another one (WORKSHOP_DATA_DIR) keeps its telemetry under its data dir:
    `workshop traces` used to read <repo>/data/telemetry whatever it said."""
    from typer.testing import CliRunner

    from workshop import traces_cmd

    data = tmp_path / "beside"
    (data / "telemetry").mkdir(parents=True)
    (data / "telemetry" / "traces.jsonl").write_text((tmp_path / "traces.jsonl").read_text())
    monkeypatch.delenv("TELEMETRY_DIR", raising=False)
    monkeypatch.setenv("WORKSHOP_DATA_DIR", str(data))
    # wide enough for the whole path and id whatever the terminal (its console is made once)
    monkeypatch.setattr(traces_cmd, "console", Console(width=400))
    result = CliRunner().invoke(traces_cmd.app, [])
    assert result.exit_code == 0, result.output
    assert TRACE_A[:12] in result.output
    monkeypatch.setenv("TELEMETRY_DIR", str(tmp_path / "elsewhere"))
    assert "No trace files in " + str(tmp_path / "elsewhere") + "." in (
        CliRunner().invoke(traces_cmd.app, []).output
    )
