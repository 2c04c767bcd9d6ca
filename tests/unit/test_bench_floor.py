"""The budget bench's decomposition of a question's CPU (workshop/bench_floor.py): the bare
app it measures the machine's wakeup cost with, the arithmetic, and the verdict it prints."""

from __future__ import annotations

from typing import Any

from workshop import bench_floor


def _lab(total: float, wakeups: float, per: dict[str, tuple[float, float]]) -> dict[str, Any]:
    return {
        "ms_per_question": total,
        "wakeups_per_question": wakeups,
        "questions": 400,
        "per_process": {n: {"wakeups": w, "ms": ms} for n, (w, ms) in per.items()},
    }


OFF = _lab(12.0, 27.0, {"api-gateway": (5.0, 2.0), "queue-worker": (5.0, 1.5),
                        "redis": (6.0, 0.5), "collector": (1.0, 0.1)})  # fmt: skip
BUILT = _lab(19.0, 35.0, {})


def test_a_python_wakeup_costs_the_bare_apps_paced_request_native_ones_their_own() -> None:
    # 10 Python wakeups at 200 µs, Redis and the collector as measured (not 7 × 200 µs)
    assert bench_floor.floor_ms(OFF["per_process"], 200) == 2.6


def test_the_parts_add_up_to_the_built_stack() -> None:
    x = bench_floor.decompose(BUILT, OFF, {"hot_us": 50, "paced_us": 200, "requests": 600})
    assert (x["floor_ms"], x["telemetry_ms"], x["code_ms"]) == (2.6, 7.0, 9.4)
    assert round(x["floor_ms"] + x["telemetry_ms"] + x["code_ms"], 2) == BUILT["ms_per_question"]


def test_the_verdict_says_when_the_floor_alone_misses_the_target() -> None:
    bare = {"hot_us": 50, "paced_us": 800, "requests": 600}  # 10 × 0.8 + 0.6 = 8.6 ms
    text = "\n".join(bench_floor.render(bench_floor.decompose(BUILT, OFF, bare), 7.0))
    assert "The floor alone (8.6 ms) is above the 7 ms target" in text


def test_the_verdict_says_what_a_target_above_the_floor_leaves_for_code() -> None:
    bare = {"hot_us": 50, "paced_us": 200, "requests": 600}
    text = "\n".join(bench_floor.render(bench_floor.decompose(BUILT, OFF, bare), 7.0))
    assert "leaves 4.40 ms a question" in text and "that code costs 16.40 ms" in text
    assert "| telemetry (context propagation, spans, log records, export) | 7.0 | 37% |" in text
    assert "200 µs of CPU per request (50 µs back to back)" in text


def test_the_bare_app_is_measured_on_a_real_server_and_costs_more_paced() -> None:
    costs = bench_floor.bare_costs(n=40, rounds=1)
    assert costs["requests"] == 40
    # CPU per request is real and bounded: a live process, not a constant
    assert 1 <= costs["hot_us"] < 50_000 and 1 <= costs["paced_us"] < 50_000
