"""Each shape's tick over simulated time follows its definition; --time-scale compresses it.
Pure arithmetic: `scenarios.shape_math` imports no Locust."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios import shape_math as sm


def test_shape_math_does_not_import_locust() -> None:
    assert not hasattr(sm, "LoadTestShape")
    source = Path(sm.__file__).read_text()
    assert "import locust" not in source and "from locust" not in source


def test_steady_holds_then_stops() -> None:
    shape = sm.Scaled(sm.Steady(10, 2.0, duration=60))
    assert shape.at(0) == (10, 2.0)
    assert shape.at(59.9) == (10, 2.0)
    assert shape.at(60) is None


def test_step_ramp_adds_a_step_per_interval_up_to_the_peak() -> None:
    shape = sm.StepRamp(step_users=5, step_seconds=30, peak_users=20, hold=30)
    assert shape.steps == 4 and shape.duration == 150
    users = [shape.at(t)[0] for t in (0, 29, 30, 60, 90, 120, 149)]
    assert users == [5, 5, 10, 15, 20, 20, 20]
    assert shape.at(150) is None


def test_spike_jumps_and_returns() -> None:
    shape = sm.Spike(base_users=10, peak_users=60, spike_at=100, spike_seconds=50, duration=300)
    assert shape.at(0)[0] == 10
    assert shape.at(99)[0] == 10
    assert shape.at(100)[0] == 60
    assert shape.at(149)[0] == 60
    assert shape.at(150)[0] == 10
    assert shape.at(300) is None
    # The spike arrives fast: all its users within about a second.
    assert shape.at(100)[1] >= 60


def test_wave_follows_a_cosine_between_min_and_peak() -> None:
    shape = sm.Wave(min_users=4, peak_users=24, period=100, duration=250)
    assert shape.at(0)[0] == 4
    assert shape.at(25)[0] == 14
    assert shape.at(50)[0] == 24
    assert shape.at(100)[0] == 4
    assert shape.at(150)[0] == 24
    assert all(4 <= shape.at(t)[0] <= 24 for t in range(250))
    assert shape.at(250) is None


def test_soak_ramps_then_holds() -> None:
    shape = sm.Soak(users=15, ramp=120, duration=3600)
    assert shape.at(0) == (15, pytest.approx(15 / 120))
    assert shape.at(3599)[0] == 15
    assert shape.at(3600) is None


@pytest.mark.parametrize("name", ["steady", "step", "spike", "wave", "soak"])
def test_time_scale_compresses_the_timeline(name: str) -> None:
    opts = dict(shape=name, users=40, min_users=8, duration=200, step_seconds=40, period=50)
    normal = sm.build(sm.ShapeOptions(**opts, time_scale=1.0))
    fast = sm.build(sm.ShapeOptions(**opts, time_scale=0.1))
    assert fast.duration == pytest.approx(normal.duration * 0.1)
    for t in range(0, int(normal.duration), 5):
        u_normal, rate_normal = normal.at(t)
        u_fast, rate_fast = fast.at(t * 0.1)
        assert u_fast == u_normal
        assert rate_fast == pytest.approx(rate_normal * 10, rel=1e-3)
    assert fast.at(fast.duration) is None and normal.at(normal.duration) is None


def test_run_time_caps_a_shape_on_wall_clock() -> None:
    shape = sm.build(sm.ShapeOptions(shape="soak", users=5, time_scale=0.5, run_time=12))
    assert shape.duration == 12
    assert shape.at(11.9) is not None and shape.at(12) is None


def test_none_is_plain_locust_semantics() -> None:
    shape = sm.build(sm.ShapeOptions(num_users=7, spawn_rate=3, run_time=10, time_scale=0.1))
    assert shape.at(0) == (7, 3.0)
    assert shape.at(9.9) == (7, 3.0)  # not scaled
    assert shape.at(10) is None
    endless = sm.build(sm.ShapeOptions(num_users=2))
    assert endless.duration is None and endless.at(1e6) == (2, 1.0)


def test_simulate_samples_until_the_end() -> None:
    ticks = sm.simulate(
        sm.build(sm.ShapeOptions(shape="spike", users=30, duration=100, time_scale=0.1)), step=0.5
    )
    assert ticks[-1] is None
    users = [t[0] for t in ticks[:-1]]
    assert max(users) == 30 and users[0] == users[-1] == 6


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        sm.build(sm.ShapeOptions(shape="zigzag"))
    with pytest.raises(ValueError, match="time scale"):
        sm.Scaled(sm.Steady(1, 1), time_scale=0)
