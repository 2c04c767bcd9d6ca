"""The `workshop bench` validation section measures both arms on the same queries."""

from __future__ import annotations

from typing import Any

from workshop import validation_bench


def test_section_measures_both_validators_and_reports_a_target() -> None:
    v = validation_bench.measure(rounds=1)
    assert v["corpus"]["queries"] >= 250
    assert v["corpus"]["median_us"] > 0 and v["corpus"]["p99_us"] >= v["corpus"]["median_us"]
    before = v["generated_before"]
    assert before["queries"] == 30
    assert before["old"]["accepted"] == 30  # the baseline arm accepts its own generator's
    assert before["new"]["accepted"] == 30  # ... and today's validator accepts them too
    assert v["generated"]["new"]["accepted"] == 30
    text = "\n".join(validation_bench.markdown(v))
    assert "today's" in text and "before issue 15" in text and "p99" in text

    def target(*args: Any) -> tuple[Any, ...]:
        return args

    (t,) = validation_bench.targets(v, target)
    assert t[0] == "validation_vs_before" and t[4] == (before["median_ratio_new_vs_old"] <= 1.0)
    assert validation_bench.targets(None, target) == []
