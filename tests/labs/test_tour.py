"""The guided tour is a spec (labs/specs/tours/demo.yaml) run by the labs' timeline: its
phases come from the fault steps, and a broken tour spec is refused before anything runs."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from labs.runtime import all_specs
from labs.runtime.spec import TOUR_DIR, TourSpec, load_tour
from labs.runtime.state import FaultRecord
from workshop.demo import _actual_windows


def _raw() -> dict:
    return yaml.safe_load((TOUR_DIR / "demo.yaml").read_text())


def test_the_demo_is_a_tour_with_four_phases_cut_by_its_fault_steps():
    tour = load_tour("demo")
    assert [p.key for p in tour.phases] == ["baseline", "latency", "errors", "recovery"]
    full = [(p.key, a, b) for p, a, b in tour.windows(short=False)]
    assert full == [
        ("baseline", 0, 30),
        ("latency", 30, 60),
        ("errors", 60, 90),
        ("recovery", 90, 120),
    ]
    assert [b - a for _p, a, b in tour.windows(short=True)] == [10, 10, 10, 10]
    # the faults are the tour's own: scoped to its attendee, never process-wide
    assert {f.scope for f in tour.faults} == {"attendee"}


def test_labs_never_list_the_tour():
    assert "demo" not in {s.id for s in all_specs()}
    with pytest.raises(KeyError, match="one of \\['demo'\\]"):
        load_tour("nope")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["phases"][1].update(fault=None), "each fault step is shown"),
        (lambda d: d["phases"].reverse(), "each fault step is shown|overlaps"),
        (lambda d: d["faults"][1]["short"].update(offset_s=15), "overlaps or is empty"),
        (lambda d: d.update(questions=[{"id": "x"}]), "questions"),
    ],
    ids=["fault-not-shown", "out-of-order", "overlap", "questions"],
)
def test_a_broken_tour_is_refused(mutate, message):
    data = _raw()
    mutate(data)
    with pytest.raises(ValidationError, match=message):
        TourSpec.model_validate(data)


def test_phase_windows_follow_when_the_faults_were_really_on():
    windows = load_tour("demo").windows(short=True)
    t0 = 1000.0
    faults = [
        FaultRecord(0, "latency", "validation-service", "f1", t0 + 10.4, t0 + 20.3),
        FaultRecord(1, "error", "query-service", "f2", t0 + 20.5, t0 + 30.6),
    ]
    got = [
        (p.key, round(a - t0, 1), round(b - t0, 1))
        for p, a, b in _actual_windows(windows, t0, faults)
    ]
    assert got == [
        ("baseline", 0.0, 10.0),
        ("latency", 10.4, 20.3),
        ("errors", 20.5, 30.6),
        ("recovery", 30.6, 40.0),
    ]
    # before any fault started, the nominal windows
    assert [(a - t0, b - t0) for _p, a, b in _actual_windows(windows, t0, [])] == [
        (0, 10),
        (10, 20),
        (20, 30),
        (30, 40),
    ]
