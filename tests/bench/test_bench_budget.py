"""`workshop bench --budget t3.small --short` end to end, as a subprocess: two native stacks
side by side on their own ports (gateway 25010 and 25210, Redis 25379 and 25579, OTLP
25317/25318 and 25517/25518), the cold-wakeup probe, the one-process experiment, the
telemetry-off stack that takes the second one's place (gateway 25410, Redis 25779) and the
bare app on a port the system picks, and the section it writes. Figures are checked for
presence and sanity, never for value: the machine running the tests is not quiet."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.bench import finite_number, run_bench, stack_marks

BASE = int(os.environ.get("BUDGET_TEST_PORT_BASE", "25000"))
BOUND_S = 240

pytestmark = stack_marks(BOUND_S)


@pytest.fixture(scope="module")
def budget(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("budget") / "benchmarks.md"
    args = ["--budget", "t3.small", "--short", "--out", str(out)]
    proc = run_bench(args + ["--data-dir", "data/bench-budget-test"], base=BASE, timeout_s=BOUND_S)
    summary = json.loads((out.parent / "benchmarks" / "budget-t3.small.json").read_text())
    return {"out": out, "summary": summary, "stdout": proc.stdout}


def test_both_arms_are_measured_and_the_room_is_sized(budget: dict[str, Any]) -> None:
    arms = budget["summary"]["measured"]["arms"]
    for arm in ("now", "before"):
        finite_number(arms[arm]["idle_total_ms_per_s"])
        assert finite_number(arms[arm]["ms_per_question_total"]) > 0, arm
        assert finite_number(arms[arm]["questions_per_s_per_attendee"]) > 0, arm
    small = budget["summary"]["instances"]["now"]["t3.small"]
    assert small["attendees"] >= 0 and finite_number(small["sustainable_questions_per_s"]) > 0
    assert (budget["out"].parent / "benchmarks" / "budget-t3.small.png").stat().st_size > 0


def test_the_one_process_experiment_ran_and_put_the_stack_back(budget: dict[str, Any]) -> None:
    measured = budget["summary"]["measured"]
    wakeup, one = measured["wakeup"], measured["one_process"]
    assert one["separate"] == wakeup["lab"]  # the probe's own count is the as-built arm
    for layout in ("separate", "one"):
        assert finite_number(one[layout]["wakeups_per_question"]) > 0, layout
        assert finite_number(one[layout]["ms_per_question"]) > 0, layout
        assert one[layout]["questions"] > 0, layout
    assert one["services"] == 8
    # measure() raised if the services did not come back ready under supervisord.


def test_the_decomposition_measured_a_telemetry_off_stack_and_the_bare_app(
    budget: dict[str, Any],
) -> None:
    measured = budget["summary"]["measured"]
    floor = measured["floor"]
    off = floor["off"]
    assert floor["built"]["questions"] > 0 and off["questions"] > 0
    assert finite_number(off["ms_per_question"]) > 0
    assert "api-gateway" in off["per_process"] and "supervisord" not in off["per_process"]
    assert finite_number(floor["bare"]["paced_us"]) > 0 and floor["bare"]["requests"] > 0
    parts = floor["floor_ms"] + floor["telemetry_ms"] + floor["code_ms"]
    assert abs(parts - floor["built"]["ms_per_question"]) < 0.05


def test_the_section_states_the_targets_and_both_findings(budget: dict[str, Any]) -> None:
    text = budget["out"].read_text()
    for needle in (
        "## Budget: a t3.small",
        "Issue 19's targets (as built)",
        "| stack CPU per question, full tracing (ms) | ≤ 7 |",
        "What bounds the CPU per question: cold wakeups",
        "What fewer wakeups would buy, measured",
        "| the same services in one process (experiment) |",
        "Where a question's CPU goes at lab rates",
        "| telemetry (context propagation, spans, log records, export) |",
        "](benchmarks/budget-t3.small.png)",
    ):
        assert needle in text, needle
    assert "now: idle" in budget["stdout"] and "before: idle" in budget["stdout"]
