"""The benchmark's typed results: the JSON and the markdown are those of a real run.

docs/benchmarks.json and docs/benchmarks.md were written together by one `workshop bench`
run; read back into `BenchResults`, the JSON serialises to the same keys in the same order and
the report renders to the same markdown (its `--budget` section spliced in as write_report
does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stack.common.settings import REPO_ROOT
from workshop import bench_budget_doc
from workshop.bench import BenchResults, ProcessStats, RunResult, derive, merge_slices
from workshop.bench.report import render_markdown

DOCS = REPO_ROOT / "docs"


@pytest.fixture
def saved() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DOCS / "benchmarks.json").read_text())
    return data


def test_the_json_round_trips(saved: dict[str, Any]) -> None:
    typed = BenchResults.from_dict(saved)
    assert isinstance(typed.full_otel_on, RunResult)
    assert isinstance(typed.runs.full[0].processes["api-gateway"], ProcessStats)
    # The plan's derived figures are written too (older files lack them).
    expected = json.loads(json.dumps(saved))
    plan = typed.plan
    expected["plan"].update(middle=plan.middle, top=plan.top, slice=plan.slice)
    assert json.dumps(typed.to_dict(), indent=2) == json.dumps(expected, indent=2)
    again = BenchResults.from_dict(typed.to_dict())
    assert again == typed


def test_the_markdown_is_the_committed_report(saved: dict[str, Any]) -> None:
    typed = BenchResults.from_dict(saved)
    plots = {k: Path(v).name for k, v in typed.plots.items()}
    rendered = render_markdown(typed, plots, "benchmarks")
    committed = (DOCS / "benchmarks.md").read_text()
    kept = bench_budget_doc.section(committed)
    assert (bench_budget_doc.splice(rendered, kept) if kept else rendered) == committed


def test_derive_recomputes_the_saved_figures(saved: dict[str, Any]) -> None:
    typed = BenchResults.from_dict(saved)
    fresh = BenchResults.from_dict(saved)
    fresh.loaded_rss_mib, fresh.loaded_stack_mib, fresh.targets = {}, 0.0, []
    derive(fresh, fresh.plan)
    assert fresh.loaded_rss_mib == typed.loaded_rss_mib
    assert fresh.loaded_stack_mib == typed.loaded_stack_mib
    assert fresh.ratios == typed.ratios and fresh.ratio_rounds == typed.ratio_rounds
    assert [t.key for t in fresh.targets] == [t.key for t in typed.targets]
    assert [(t.measured, t.ok) for t in fresh.targets] == [
        (t.measured, t.ok) for t in typed.targets
    ]


def test_merge_slices_means_sums_and_medians() -> None:
    def run(rps: float, p95: float, cpu_s: float) -> RunResult:
        return RunResult(
            "full", 25, 10.0, requests=100, failures=1, rps=rps, p95_ms=p95, poll_p95_ms=5.0,
            jobs=50, job_p95_ms=p95 * 2, stack_cpu_pct=100.0,
            processes={"api-gateway": ProcessStats(cpu_s, 10.0, 80.0, 81.0)},
        )  # fmt: skip

    merged = merge_slices([run(10.0, 100.0, 1.0), run(20.0, 300.0, 2.0), run(30.0, 200.0, 3.0)])
    assert merged.slices == 3 and merged.duration == 30.0
    assert merged.rps == 20.0 and merged.p95_ms == 200.0 and merged.job_p95_ms == 400.0
    assert merged.requests == 300 and merged.failures == 3 and merged.error_ratio == 0.01
    assert merged.processes["api-gateway"].cpu_s == 6.0
    assert merged.to_dict()["slices"] == 3 and "slices" not in run(1, 1, 1).to_dict()


def test_the_vm_guide_quotes_the_committed_runs() -> None:
    """docs/deploy-vm.md's attendee count is measured, not a figure typed by hand: the Docker
    lane's room (what a VM runs) when its figures are committed, and the budget run's native
    figures beside it."""
    summary = json.loads((DOCS / "benchmarks" / "budget-t3.small.json").read_text())
    docker = json.loads((DOCS / "benchmarks" / "docker-cpu.json").read_text())
    block = bench_budget_doc.SIZING.find((DOCS / "deploy-vm.md").read_text())
    assert block == bench_budget_doc.SIZING.wrap(bench_budget_doc.render_sizing(summary, docker))
    assert f"**{docker['busy']['t3_small_attendees']} attendees**" in block
    native = summary["instances"]["now"]["t3.small"]["attendees"]
    assert f"a room of {native} is never throttled" in block


def test_without_docker_figures_the_table_quotes_the_native_room() -> None:
    summary = json.loads((DOCS / "benchmarks" / "budget-t3.small.json").read_text())
    text = bench_budget_doc.render_sizing(summary)
    assert f"**{summary['instances']['now']['t3.small']['attendees']} attendees**" in text
    assert "In Docker" not in text
