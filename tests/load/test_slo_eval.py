"""SLO verdicts, per-endpoint objectives, exit codes and the JUnit report (no Locust)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scenarios import faults
from scenarios import slo_eval as se

QUERIES = se.EndpointStats("POST", "/api/queries", 200, 1, p50=40, p95=180, p99=400, avg=60, rps=10)
POLLS = se.EndpointStats("GET", "/api/queries/[id]", 800, 0, p50=8, p95=30, p99=90, avg=12, rps=40)
JOB = se.EndpointStats("JOB", "question→done", 190, 10, p50=200, p95=900, p99=3000, avg=300)
ALL = se.EndpointStats("", se.AGGREGATE, 1000, 1, p50=10, p95=150, p99=380, avg=20, rps=50)


def test_no_locust_import() -> None:
    code = Path(se.__file__).read_text().split('"""', 2)[2]  # past the module docstring
    assert "import locust" not in code and "from locust" not in code


def test_global_objectives_pass_and_breach() -> None:
    goals = se.global_objectives(p95_ms=200, p99_ms=300, fail_ratio=0.01, min_rps=100)
    verdicts = se.evaluate(goals, [QUERIES, POLLS], ALL)
    status = {v.objective.metric: v.passed for v in verdicts}
    assert status == {"p95": True, "p99": False, "fail": True, "rps": False}
    breach = next(v for v in verdicts if v.objective.metric == "p99")
    assert breach.message == "SLO breached: p99 of all requests was 380 ms > 300 ms"
    rps = next(v for v in verdicts if v.objective.metric == "rps")
    assert "throughput of all requests was 50.0 req/s < 100.0 req/s" in rps.message


def test_endpoint_entries_parse_in_every_readable_form() -> None:
    goals = se.parse_endpoint_slos(
        [
            "POST /api/queries: p95=300 p99=800",
            "GET /api/queries/[id]: p95=150, fail=1%",
            "JOB question→done: p95=5000 | GET /api/history: rps=2, fail_ratio=0.05",
        ]
    )
    assert [(g.endpoint, g.metric, g.threshold) for g in goals] == [
        ("POST /api/queries", "p95", 300),
        ("POST /api/queries", "p99", 800),
        ("GET /api/queries/[id]", "p95", 150),
        ("GET /api/queries/[id]", "fail", 0.01),
        ("JOB question→done", "p95", 5000),
        ("GET /api/history", "rps", 2),
        ("GET /api/history", "fail", 0.05),
    ]


@pytest.mark.parametrize(
    "bad", ["/api/queries p95=3", "POST /api/queries: p95", "POST /x: p97=3", "POST /x: p95=3 z"]
)
def test_bad_endpoint_entries_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="SLO entry"):
        se.parse_endpoint_slos(bad)


def test_endpoint_objectives_judge_their_own_row() -> None:
    goals = se.parse_endpoint_slos(
        [
            "POST /api/queries: p95=150",
            "GET /api/queries/[id]: p95=150",
            "JOB question→done: p95=1000",
            "GET /api/history: p95=100",
        ]
    )
    verdicts = se.evaluate(goals, [QUERIES, POLLS, JOB], ALL)
    assert [v.passed for v in verdicts[:3]] == [False, True, True]
    assert "POST /api/queries was 180 ms > 150 ms" in verdicts[0].message
    history = verdicts[3]
    assert history.skipped and not history.breached and "no requests" in history.message


def test_exit_codes() -> None:
    ok = se.evaluate(se.global_objectives(p95_ms=500), [], ALL)
    assert se.exit_code(ok) is None  # Locust's own code stands (1 if anything failed)
    accepted = se.evaluate(se.global_objectives(fail_ratio=0.01), [], ALL)
    assert se.exit_code(accepted) == 0  # the gate accepted 0.1 % failures
    breached = se.evaluate(se.global_objectives(p95_ms=1, fail_ratio=0.5), [], ALL)
    assert se.exit_code(breached) == se.EXIT_BREACHED == 3
    assert se.exit_code([]) is None


def test_a_run_with_no_requests_breaches_every_objective() -> None:
    """`--duration 0` used to pass smoke's gate: every objective skipped, exit 0, in CI."""
    empty = se.EndpointStats("", se.AGGREGATE, 0, 0)
    goals = se.global_objectives(p95_ms=100, fail_ratio=0.01, min_rps=1)
    goals += se.parse_endpoint_slos("POST /api/queries: p95=300")
    for aggregate in (empty, None):
        verdicts = se.evaluate(goals, [], aggregate)
        assert [v.breached for v in verdicts] == [True] * 4
        assert se.exit_code(verdicts) == 3
        assert "made no requests" in verdicts[0].message
        assert "0.0 req/s < 1.0" in verdicts[2].message


def test_junit_has_one_testcase_per_objective() -> None:
    goals = se.global_objectives(p95_ms=100, fail_ratio=0.01) + se.parse_endpoint_slos(
        "POST /api/queries: p99=500 | GET /api/history: p95=10"
    )
    verdicts = se.evaluate(goals, [QUERIES], ALL)
    root = ET.fromstring(se.junit_xml("smoke", verdicts, 12.5).encode())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "slo.smoke"
    cases = suite.findall("testcase")
    assert len(cases) == len(goals) == 4
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1" and suite.get("time") == "12.500"
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1
    assert failed[0].get("name") == "p95 ≤ 100 ms (all requests)"
    assert failed[0].find("failure").get("message") == (
        "SLO breached: p95 of all requests was 150 ms > 100 ms"
    )


def test_plain_table_lists_every_verdict() -> None:
    verdicts = se.evaluate(se.global_objectives(p95_ms=100, fail_ratio=0.01), [], ALL)
    text = se.plain_table(verdicts)
    assert "BREACHED" in text and "PASS" in text and len(text.splitlines()) == 4


# ---- fault timeline parsing (plain Python, same reason: testable without Locust) ----------
def test_fault_timeline_inline_spec() -> None:
    entries = faults.parse_timeline(
        "latency:validation-service:ms=300@60s+90s;"
        "error:query-service:status=503,probability=0.3@2m+1m;queue_stall:queue-worker@1m30s"
    )
    assert [(e.kind, e.start, e.duration) for e in entries] == [
        ("latency", 60, 90),
        ("queue_stall", 90, None),
        ("error", 120, 60),
    ]
    error = entries[2]
    assert error.params == {"status": 503} and error.probability == 0.3
    body = error.body(time_scale=0.1)
    assert body == {
        "kind": "error",
        "target": "query-service",
        "params": {"status": 503},
        "ttl_seconds": 6 + faults.TTL_SLACK_S,
        "probability": 0.3,
    }


def test_fault_timeline_file(tmp_path) -> None:
    path = tmp_path / "t.timeline"
    path.write_text(
        "# warm up first\nlatency:query-service:ms=200@10s+5s  # slow\n\n"
        "cpu_burn:processing-service:ms=50@0s+20s\n"
    )
    entries = faults.parse_timeline(str(path))
    assert [e.kind for e in entries] == ["cpu_burn", "latency"]


@pytest.mark.parametrize(
    "bad",
    [
        "latency:query-service",
        "latency@5s",
        "x:y:ms@1s",
        "error:q:probability=2@1s",
        "latency:q@soon",
    ],
)
def test_bad_fault_timeline_entries(bad: str) -> None:
    with pytest.raises(ValueError):
        faults.parse_timeline(bad)
