"""Locust load shapes: Steady, StepRamp, Spike, Wave, Soak — the math lives in `shape_math`.

Locust runs the *first* shape class it finds in a locustfile, so the locustfile exposes only
`ScenarioShape`, which picks one of these by `--shape` (`none` keeps Locust's plain
`-u/-r/-t` behaviour). The named classes stay usable on their own:
`locust -f scenarios/shapes.py,scenarios/users.py --class-picker` offers them in the web UI.

Options (command line or `*.conf`): `--shape`, `--time-scale` (0.1 = ten times faster),
`--shape-users` (peak), `--shape-min-users`, `--shape-duration` (nominal seconds),
`--shape-step-seconds`, `--shape-period`. `--run-time` caps any shape on wall-clock time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from locust import LoadTestShape, events

from scenarios import shape_math


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("workshop load shape")
    group.add_argument(
        "--shape",
        default="none",
        choices=shape_math.SHAPES,
        help="load shape: none (plain -u/-r/-t), steady, step, spike, wave, soak",
    )
    group.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="compress a shape's timeline: 0.1 runs it ten times faster",
    )
    group.add_argument("--shape-users", type=int, default=None, help="peak users of the shape")
    group.add_argument(
        "--shape-min-users", type=int, default=None, help="base users of spike and wave"
    )
    group.add_argument(
        "--shape-duration", type=float, default=None, help="nominal length of the shape (s)"
    )
    group.add_argument(
        "--shape-step-seconds", type=float, default=None, help="length of one step (s)"
    )
    group.add_argument("--shape-period", type=float, default=None, help="wave period (s)")


def options_from(parsed: Any, shape: str | None = None) -> shape_math.ShapeOptions:
    def num(name: str, cast: type) -> Any:
        value = getattr(parsed, name, None)
        return None if value in (None, "") else cast(value)  # the web UI hands back strings

    return shape_math.ShapeOptions(
        shape=shape or getattr(parsed, "shape", None) or "none",
        time_scale=num("time_scale", float) or 1.0,
        users=num("shape_users", int),
        min_users=num("shape_min_users", int),
        duration=num("shape_duration", float),
        step_seconds=num("shape_step_seconds", float),
        period=num("shape_period", float),
        num_users=num("num_users", int),
        spawn_rate=num("spawn_rate", float),
        run_time=num("run_time", float),
    )


class _OptionShape(LoadTestShape):
    abstract = True
    use_common_options: ClassVar[bool] = True  # -u/-r/-t feed the shape; no Locust warning
    kind: ClassVar[str | None] = None  # None: read --shape

    def __init__(self) -> None:
        super().__init__()
        self._scaled: shape_math.Scaled | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self._scaled = None  # re-read the options on every (re)start from the web UI

    def tick(self) -> tuple[int, float] | None:
        if self._scaled is None:
            parsed = self.runner.environment.parsed_options if self.runner else None
            self._scaled = shape_math.build(options_from(parsed, self.kind))
        return self._scaled.at(self.get_run_time())


class Steady(_OptionShape):
    kind = "steady"


class StepRamp(_OptionShape):
    kind = "step"


class Spike(_OptionShape):
    kind = "spike"


class Wave(_OptionShape):
    kind = "wave"


class Soak(_OptionShape):
    kind = "soak"


class ScenarioShape(_OptionShape):
    """The shape the locustfile exposes: whichever `--shape` names."""
