"""`workshop bench --short` end to end, as a subprocess, on its own ports (TEST_PORT_BASE + 500
style: gateway 23510, redis 23879, OTLP 23817/23818, collector health 23633, chain 23530…)
and in data/bench-test/. The figures are checked for presence and sanity, never for value:
the machine running the tests is not quiet."""

from __future__ import annotations

import json
import os
import struct
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from tests.bench import finite_number, run_bench, stack_marks

BASE = int(os.environ.get("BENCH_TEST_PORT_BASE", "23500"))
BOUND_S = 220  # +40 s: the web UI endpoints' section (workshop/bench_ui.py)


pytestmark = [
    *stack_marks(BOUND_S),
    pytest.mark.skipif(find_spec("locust") is None, reason="needs the [load] extra"),
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    args = ["--short", "--out", str(out), "--data-dir", "data/bench-test"]
    started = time.monotonic()
    proc = run_bench(args, base=BASE, timeout_s=BOUND_S + 20)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_S, f"the short bench took {elapsed:.0f} s"
    return {
        "out": out,
        "results": json.loads(out.with_suffix(".json").read_text()),
        "stdout": proc.stdout,
    }


def _check_run(run: dict[str, Any], *, flow: str) -> None:
    assert run["flow"] == flow
    for key in (
        "requests",
        "failures",
        "error_ratio",
        "rps",
        "total_rps",
        "stack_cpu_pct",
        "stack_rss_max_mib",
    ):
        finite_number(run[key])
    assert run["requests"] > 0 and run["rps"] > 0
    assert 0 <= run["error_ratio"] <= 1
    p50, p95, p99 = (finite_number(run[k]) for k in ("p50_ms", "p95_ms", "p99_ms"))
    assert p50 <= p95 <= p99, (p50, p95, p99)
    if flow == "full":
        assert run["jobs"] > 0
        finite_number(run["poll_p95_ms"])
        assert finite_number(run["job_p50_ms"]) <= finite_number(run["job_p95_ms"])
    assert "locust" in run["processes"]
    # The load generator always burns CPU; 0 would mean its exit was sampled as a reading.
    assert run["processes"]["locust"]["cpu_s"] > 0
    for figures in run["processes"].values():
        for key in ("cpu_s", "cpu_pct", "rss_mean_mib", "rss_max_mib"):
            finite_number(figures[key])
        assert figures["rss_mean_mib"] <= figures["rss_max_mib"]


def test_every_level_of_both_flows(bench: dict[str, Any]) -> None:
    r = bench["results"]
    assert r["plan"]["levels"] == [2, 4]
    for flow in ("full", "cheap"):
        runs = r["runs"][flow]
        assert [run["users"] for run in runs] == [2, 4]
        for run in runs:
            _check_run(run, flow=flow)
            # Every stack process was sampled, each Python service among them.
            for name in ("redis", "collector", "api-gateway", "queue-worker", "frontend"):
                assert run["processes"][name]["rss_max_mib"] > 0, name


def test_overhead_and_ceiling(bench: dict[str, Any]) -> None:
    r = bench["results"]
    _check_run(r["full_otel_on"], flow="full")
    _check_run(r["full_otel_off"], flow="full")
    _check_run(r["full_before_fix"], flow="full")
    _check_run(r["chain"], flow="chain")
    # The old poll path still answers every poll: the 'before' figure is a working stack's.
    assert r["full_before_fix"]["failures"] == 0
    runs = ("full_otel_on", "full_otel_off", "full_before_fix", "chain")
    assert {r[run]["users"] for run in runs} == {4}
    assert set(r["ratios"]) == {
        "full_vs_chain",
        "full_gateway_requests_vs_chain",
        "telemetry_on_vs_off",
        "fix_after_vs_before",
    }
    assert set(r["chain"]["processes"]) == {f"hop{i}" for i in range(r["meta"]["chain_hops"])} | {
        "locust"
    }
    # The comparison: every arm in every round, and the per-round ratios beside the totals.
    rounds = r["plan"]["rounds"]
    assert rounds >= 2 and len(r["rounds"]) == rounds
    for arm in ("full_otel_on", "full_before_fix", "full_otel_off"):
        assert r[arm]["slices"] == rounds
    for by_arm in r["rounds"]:
        assert set(by_arm) == {"on", "before", "off"} and all(v > 0 for v in by_arm.values())
    for key in ("telemetry_on_vs_off", "fix_after_vs_before"):
        per_round = r["ratio_rounds"][key]
        assert len(per_round) == rounds
        assert (
            min(per_round) <= r["ratios"][key] * 1.01 and r["ratios"][key] <= max(per_round) * 1.01
        )
    for name, ratio in r["ratios"].items():
        assert 0 < finite_number(ratio) < 10, (name, ratio)


def test_footprint_and_startup(bench: dict[str, Any]) -> None:
    r = bench["results"]
    assert 0 < finite_number(r["startup_s"]) < 120
    assert 0 < finite_number(r["startup_otel_off_s"]) < 120
    python = [
        "api-gateway",
        "query-service",
        "validation-service",
        "queue-service",
        "processing-service",
        "storage-service",
        "queue-worker",
        "external-api-service",
        "frontend",
    ]
    for name in ["supervisord", "redis", "collector", *python]:
        assert finite_number(r["idle_rss_mib"][name]) > 0, name
        assert finite_number(r["loaded_rss_mib"][name]) > 0, name
    assert r["idle_stack_mib"] == pytest.approx(sum(r["idle_rss_mib"].values()), abs=1)
    # The supervisord figure is supervisord alone, not its whole tree.
    assert r["idle_rss_mib"]["supervisord"] < r["idle_stack_mib"] / 3
    finite_number(r["loaded_stack_mib"])


def test_targets_and_stamp(bench: dict[str, Any]) -> None:
    r = bench["results"]
    meta = r["meta"]
    assert meta["short"] is True and meta["cores"] >= 1 and meta["memory_gib"] > 0
    assert meta["cpu_model"] and meta["python"] and meta["commit"] and meta["date"]
    assert len(r["targets"]) == 16 and all(isinstance(t["ok"], bool) for t in r["targets"])
    issue_19 = {"questions_per_s_19", "p95_ms_19", "telemetry_ratio_19"}
    assert issue_19 <= {t["key"] for t in r["targets"]}
    text = bench["out"].read_text()
    for needle in (
        "Short mode",
        "## Targets",
        meta["commit"],
        meta["python"],
        meta["cpu_model"],
        "telemetry on ÷ off",
        "after ÷ before",
        "round by round",
        "GATEWAY_POLL_VIA=services",
        "5-hop bare uvicorn chain",
        "whole stack",
        "≤ 250 ms",
        "≥ 0.85",
        "≤ 120 ms",
        "≥ 0.75",
        "(issue 19)",
        "≤ 1.3 GiB",
        "≤ 15 s",
    ):
        assert needle in text, needle
    assert text.count("✅") + text.count("❌") == 16
    ui = r["ui"]  # the web UI's endpoints (workshop/bench_ui.py)
    assert ui["waterfall_spans"] == 30 and ui["waterfall_services"] == 8
    for key in ("red_everyone_p95_ms", "waterfall_cold_ms", "waterfall_warm_p95_ms"):
        finite_number(ui[key])
    for key in ("gateway_cpu_pct_no_page", "gateway_cpu_pct_page_open"):
        finite_number(ui["live"][key])
    assert "## Web UI: live RED charts and trace waterfalls" in text
    # Missed targets are explained in the report, and only then.
    missed = [t["what"] for t in r["targets"] if not t["ok"]]
    assert ("## Missed targets" in text) == bool(missed)
    for what in missed:
        assert f"**{what}: " in text, what
    assert "report:" in bench["stdout"]


def test_plots_are_pngs(bench: dict[str, Any]) -> None:
    plots = bench["results"]["plots"]
    assert set(plots) == {"throughput", "p95", "rss"}
    text = bench["out"].read_text()
    for path in map(Path, plots.values()):
        assert path.parent == bench["out"].parent / "benchmarks"
        assert f"(benchmarks/{path.name})" in text
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100
        assert data[-8:-4] == b"IEND"
