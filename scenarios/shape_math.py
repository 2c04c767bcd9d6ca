"""The arithmetic behind the load shapes, free of Locust so it can be tested with simulated time.

Every shape answers `at(t)` for a *nominal* time `t` in seconds (the time the shape is defined
in) with `(users, spawn_rate)` or `None` once it is over. `Scaled` maps wall-clock time onto
nominal time: with `time_scale=0.1` a 10-minute shape runs in one minute and users are spawned
ten times faster, so the curve keeps its form.

`scenarios/shapes.py` wraps these in Locust `LoadTestShape` classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Tick = tuple[int, float] | None


@dataclass(frozen=True)
class Steady:
    """`users` for `duration` seconds (`None`: until stopped)."""

    users: int
    spawn_rate: float
    duration: float | None = None

    def at(self, t: float) -> Tick:
        if self.duration is not None and t >= self.duration:
            return None
        return self.users, self.spawn_rate


@dataclass(frozen=True)
class StepRamp:
    """`step_users` more users every `step_seconds` until `peak_users`, then hold `hold` seconds."""

    step_users: int
    step_seconds: float
    peak_users: int
    hold: float = 0.0
    spawn_rate: float | None = None  # default: a step's users within a tenth of its length

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.peak_users / max(1, self.step_users)))

    @property
    def duration(self) -> float:
        return self.steps * self.step_seconds + self.hold

    def at(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        step = min(self.steps, int(t // self.step_seconds) + 1)
        rate = self.spawn_rate or max(1.0, self.step_users / max(self.step_seconds / 10, 1e-9))
        return min(self.peak_users, step * self.step_users), rate


@dataclass(frozen=True)
class Spike:
    """`base_users`; at `spike_at` jump to `peak_users` for `spike_seconds`; back to base."""

    base_users: int
    peak_users: int
    spike_at: float
    spike_seconds: float
    duration: float
    base_rate: float = 5.0
    spike_rate: float | None = None  # default: the whole spike within a second or two

    def at(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        if self.spike_at <= t < self.spike_at + self.spike_seconds:
            return self.peak_users, self.spike_rate or float(max(1, self.peak_users))
        return self.base_users, (
            self.base_rate if t < self.spike_at else self.spike_rate or float(self.peak_users)
        )


@dataclass(frozen=True)
class Wave:
    """Users follow a cosine between `min_users` and `peak_users` with period `period`."""

    min_users: int
    peak_users: int
    period: float
    duration: float

    def users_at(self, t: float) -> int:
        phase = (1 - math.cos(2 * math.pi * t / self.period)) / 2  # 0 → 1 → 0
        return round(self.min_users + (self.peak_users - self.min_users) * phase)

    def at(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        # Fast enough to follow the curve's steepest slope (amplitude·π/period users/s).
        slope = math.pi * (self.peak_users - self.min_users) / self.period
        return self.users_at(t), max(1.0, 2 * slope)


@dataclass(frozen=True)
class Soak:
    """Ramp linearly to `users` over `ramp` seconds, then hold them to `duration`."""

    users: int
    ramp: float
    duration: float

    def at(self, t: float) -> Tick:
        if t >= self.duration:
            return None
        rate = self.users / self.ramp if self.ramp > 0 else float(self.users)
        return self.users, max(rate, 0.01)


@dataclass(frozen=True)
class Scaled:
    """Run `shape` on wall-clock time compressed by `time_scale`, optionally capped."""

    shape: Steady | StepRamp | Spike | Wave | Soak
    time_scale: float = 1.0
    limit: float | None = None  # wall-clock seconds (Locust's --run-time), never scaled

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {self.time_scale}")

    @property
    def duration(self) -> float | None:
        """Wall-clock length, or None when the shape runs until stopped."""
        nominal = getattr(self.shape, "duration", None)
        real = None if nominal is None else nominal * self.time_scale
        if self.limit is not None:
            return self.limit if real is None else min(real, self.limit)
        return real

    def at(self, elapsed: float) -> Tick:
        if self.limit is not None and elapsed >= self.limit:
            return None
        tick = self.shape.at(elapsed / self.time_scale)
        if tick is None:
            return None
        users, rate = tick
        return users, round(rate / self.time_scale, 3)


SHAPES = ("none", "steady", "step", "spike", "wave", "soak")


@dataclass
class ShapeOptions:
    """The command-line options a shape reads (all optional; defaults per shape below)."""

    shape: str = "none"
    time_scale: float = 1.0
    users: int | None = None  # --shape-users: the peak (or the steady level)
    min_users: int | None = None  # --shape-min-users: base of spike and wave
    duration: float | None = None  # --shape-duration: nominal seconds
    step_seconds: float | None = None  # --shape-step-seconds
    period: float | None = None  # --shape-period (wave)
    num_users: int | None = None  # Locust's -u
    spawn_rate: float | None = None  # Locust's -r
    run_time: float | None = None  # Locust's -t (wall clock, caps every shape)


def build(opts: ShapeOptions) -> Scaled:
    """The shape the options describe, with nominal defaults that make sense for a workshop."""
    name = (opts.shape or "none").lower()
    peak = int(opts.users or opts.num_users or 20)
    low = int(opts.min_users if opts.min_users is not None else max(1, peak // 5))
    rate = float(opts.spawn_rate or max(1.0, peak / 10))
    scale = float(opts.time_scale or 1.0)
    if name == "none":
        # Plain Locust semantics: -u/-r/-t on wall-clock time, no scaling.
        return Scaled(Steady(int(opts.num_users or peak), rate), 1.0, opts.run_time)
    if name == "steady":
        shape: Steady | StepRamp | Spike | Wave | Soak = Steady(
            peak, rate, float(opts.duration or 300)
        )
    elif name == "step":
        step_s = float(opts.step_seconds or 60)
        steps = 5
        if opts.duration:
            steps = max(1, int(float(opts.duration) // step_s))
        step_users = max(1, math.ceil(peak / steps))
        shape = StepRamp(step_users, step_s, peak, hold=step_s if not opts.duration else 0)
    elif name == "spike":
        total = float(opts.duration or 300)
        shape = Spike(low, peak, spike_at=total * 0.4, spike_seconds=total * 0.2, duration=total)
    elif name == "wave":
        shape = Wave(low, peak, float(opts.period or 120), float(opts.duration or 600))
    elif name == "soak":
        total = float(opts.duration or 3600)
        shape = Soak(peak, ramp=min(120.0, total / 10), duration=total)
    else:
        raise ValueError(f"unknown shape {opts.shape!r}: choose one of {', '.join(SHAPES)}")
    return Scaled(shape, scale, opts.run_time)


def simulate(scaled: Scaled, step: float = 1.0, until: float | None = None) -> list[Tick]:
    """Sample a shape every `step` wall-clock seconds until it ends (for tests and docs)."""
    out: list[Tick] = []
    t = 0.0
    horizon = until if until is not None else (scaled.duration or 0) + step
    while t <= horizon:
        tick = scaled.at(t)
        out.append(tick)
        if tick is None:
            break
        t += step
    return out
