"""The t3 budget model (workshop/bench_budget.py) with synthetic figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workshop.bench_budget import (
    INSTANCES,
    Figures,
    LabLoad,
    demand,
    idle_window,
    lab_loads,
    per_question,
    quietest,
    room_capacity,
    simulate,
    start_balance,
    sustainable_rate,
)
from workshop.bench_budget_doc import section, splice, target_rows

SMALL = INSTANCES["t3.small"]


def test_the_t3_small_baseline_is_0_4_vcpu() -> None:
    assert SMALL.baseline_vcpu == pytest.approx(0.4)
    assert INSTANCES["t3.medium"].baseline_vcpu == SMALL.baseline_vcpu  # same credits/h


def test_sustainable_rate_is_the_spare_baseline_over_cpu_per_question() -> None:
    f = Figures(idle_ms_per_s=50, cpu_ms_per_question=20, questions_per_s_per_user=4)
    assert sustainable_rate(SMALL, f) == pytest.approx((400 - 50) / 20)  # the issue's 17.5
    f.idle_ms_per_s = 500  # idle alone past the baseline: nothing is sustainable
    assert sustainable_rate(SMALL, f) == 0


def test_think_time_slows_a_user_down() -> None:
    f = Figures(idle_ms_per_s=0, cpu_ms_per_question=10, questions_per_s_per_user=5)
    assert f.user_rate(None) == 5
    # measured loop 0.2 s with a 0.15 s mean pause → 0.05 s of work; with 1 s thinking: 1/1.05
    assert f.user_rate(1.0) == pytest.approx(1 / 1.05)


def test_demand_counts_every_attendee_once_per_lab() -> None:
    f = Figures(idle_ms_per_s=10, cpu_ms_per_question=10, questions_per_s_per_user=5)
    labs = [LabLoad("a", users=2, duration_s=120), LabLoad("b", users=2, duration_s=120)]
    one, three = demand(labs, f, 1), demand(labs, f, 3)
    idle = 0.01 * 180
    per_lab_vcpu_min = 2 * 5 * 10 / 1000 * 2  # 2 users × 5 q/s × 10 ms, for 2 minutes
    assert sum(one) == pytest.approx(idle + 2 * per_lab_vcpu_min)
    assert sum(three) == pytest.approx(idle + 3 * 2 * per_lab_vcpu_min)
    assert len(one) == 180 and min(one) == pytest.approx(0.01)


def test_an_empty_balance_throttles_and_a_light_load_never_does() -> None:
    light = simulate(SMALL, [0.2] * 180)
    assert light.throttled_min == 0 and light.balance[-1] == pytest.approx(0.2 * 180)
    heavy = simulate(SMALL, [1.0] * 180)
    assert heavy.throttled_min == 180 and heavy.surplus_credits == pytest.approx(0.6 * 180)
    assert max(heavy.balance) == 0
    capped = simulate(SMALL, [0.0] * 60 * 30)  # a day and more idle: the balance stops at 576
    assert max(capped.balance) == SMALL.max_credits


def test_room_capacity_finds_the_edge() -> None:
    # 1 attendee = 0.1 vCPU all workshop long (idle 0); baseline 0.4 → 4 never throttled
    f = Figures(idle_ms_per_s=0, cpu_ms_per_question=10, questions_per_s_per_user=10)
    labs = [LabLoad("all-day", users=1, duration_s=180 * 60)]
    cap, sims = room_capacity(SMALL, labs, f, start_credits=0)
    assert cap == 4
    assert sims[4].throttled_min == 0 and sims[5].throttled_min > 0


def test_room_capacity_respects_the_peak() -> None:
    # A short burst: credits are no problem, but 25 attendees at 0.1 vCPU each need 2.5 vCPUs.
    f = Figures(idle_ms_per_s=0, cpu_ms_per_question=10, questions_per_s_per_user=10)
    labs = [LabLoad("burst", users=1, duration_s=60 * 60)]
    cap, sims = room_capacity(SMALL, labs, f, start_credits=SMALL.max_credits)
    assert cap == 18  # 18 × 0.1 = 1.8 = 90 % of 2 vCPUs
    assert sims[19].peak_vcpu > 1.8


def test_the_start_balance_is_an_hour_of_idle_earning() -> None:
    f = Figures(idle_ms_per_s=100, cpu_ms_per_question=10, questions_per_s_per_user=5)
    # 24 credits/h earned, 0.1 vCPU × 60 min = 6 spent by the idle stack
    assert start_balance(SMALL, f) == pytest.approx(18)
    f.idle_ms_per_s = 1000
    assert start_balance(SMALL, f) == 0


def test_per_question_subtracts_the_idle_rate() -> None:
    report = {"api-gateway": {"cpu_s": 2.0}, "redis": {"cpu_s": 0.1}}
    idle = {"api-gateway": 5.0, "redis": 10.0}  # ms/s
    out = per_question(report, idle, wall=20, questions=100)
    assert out == {"api-gateway": pytest.approx((2000 - 100) / 100), "redis": 0.0}
    assert per_question(report, idle, 20, 0) == {}


def test_idle_keeps_the_quieter_window() -> None:
    before, after = {"collector": 9.0, "redis": 1.0}, {"collector": 4.0, "redis": 1.5}
    assert quietest([before, after]) == after
    assert quietest([after, before]) == after


def test_the_idle_window_reads_each_process_in_nanoseconds() -> None:
    """A process that spins reads as a core's worth; one that sleeps as nearly nothing —
    below the one 10 ms clock tick that a tick-based reading could not go under."""

    def started(code: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"print('up', flush=True)\n{code}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"  # started up
        return proc

    spin = started("while True: pass")
    rest = started("import time; time.sleep(30)")
    try:
        window = idle_window({"arm": {"spin": spin.pid, "rest": rest.pid}}, 0.5)["arm"]
    finally:
        spin.kill()
        rest.kill()
    assert window["spin"] > 300  # ms of CPU a second; a core is 1000
    assert window["rest"] < 5


def test_the_labs_load_comes_from_the_specs() -> None:
    loads = {lab.name: lab for lab in lab_loads()}
    assert "instructor" not in loads and len(loads) >= 8
    assert loads["05-infrastructure"].think_s == 1.0  # paced traffic (spec field think_s)
    assert all(lab.users >= 1 and lab.duration_s > 0 for lab in loads.values())


def test_splice_replaces_only_its_section() -> None:
    doc = "# Bench\n\nbody\n"
    once = splice(doc, "## Budget\nold")
    assert once.startswith("# Bench\n\nbody") and "## Budget\nold" in once
    twice = splice(once + "\ntail\n", "## Budget\nnew")
    assert "old" not in twice and "## Budget\nnew" in twice and twice.rstrip().endswith("tail")
    assert section(twice) == "## Budget\nnew" and section(doc) is None


def test_a_full_bench_report_keeps_the_budget_section(tmp_path, monkeypatch) -> None:
    import json

    from stack.common.settings import REPO_ROOT
    from workshop.bench import BenchResults, report

    saved = json.loads((REPO_ROOT / "docs" / "benchmarks.json").read_text())
    out = tmp_path / "benchmarks.md"
    out.write_text(splice("# old report\n", "## Budget\nmeasured"))
    monkeypatch.setattr(report, "write_plots", lambda results, plot_dir: {})
    monkeypatch.setattr(report, "render_markdown", lambda results, plots, rel: "# new report\n")
    report.write_report(BenchResults.from_dict(saved), out)
    text = out.read_text()
    assert text.startswith("# new report") and "## Budget\nmeasured" in text


def test_issue_19s_targets_are_judged_against_the_as_built_figures() -> None:
    now = {"idle_total_ms_per_s": 6.75, "ms_per_question_total": 17.97}
    text = "\n".join(target_rows(now, {"sustainable_questions_per_s": 21.9}))
    assert "| idle stack CPU (ms/s) | ≤ 10 | 6.75 | ✅ |" in text
    assert "| stack CPU per question, full tracing (ms) | ≤ 7 | 17.97 | ❌ |" in text
    assert "| questions/s sustainable on a t3.small | ≥ 55 | 21.9 | ❌ |" in text
    lean = {"idle_total_ms_per_s": 12.0, "ms_per_question_total": 6.5}
    text = "\n".join(target_rows(lean, {"sustainable_questions_per_s": 60.0}))
    assert "| 12.0 | ❌ |" in text and "| 6.5 | ✅ |" in text and "| 60.0 | ✅ |" in text


def test_the_budget_section_names_the_machine_it_was_measured_on() -> None:
    # A full bench keeps this section as it was, so a reader must be told when the two runs
    # came from different machines or commits.
    from workshop.bench_budget_doc import _provenance

    stamp = {
        "date": "2026-12-07 05:40 UTC",
        "cores": 2,
        "cpu_model": "AMD EPYC",
        "python": "3.11.7",
        "commit": "abc1234",
        "load_before": [0.1, 0.2, 0.3],
    }
    text = "\n".join(_provenance(stamp))
    assert "2026-12-07 05:40 UTC" in text and "AMD EPYC" in text and "`abc1234`" in text
    assert _provenance(None) == []
