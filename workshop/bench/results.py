"""The benchmark's results, typed: what run → derive → report pass between them.

`BenchResults.to_dict()` is the JSON written to docs/benchmarks.json (same keys, same order as
before the types), `BenchResults.from_dict()` reads one back. Two sections stay plain dicts:
`validation` and `ui` belong to workshop/validation_bench.py and workshop/bench_ui.py, which
build, check and render them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workshop.bench.plan import Plan


@dataclass
class ProcessStats:
    """One process (with its children) over a run: CPU seconds, CPU % of one core, RSS."""

    cpu_s: float = 0.0
    cpu_pct: float = 0.0
    rss_mean_mib: float = 0.0
    rss_max_mib: float = 0.0


@dataclass
class RunResult:
    flow: str
    users: int
    duration: float
    requests: int = 0
    failures: int = 0
    error_ratio: float = 0.0
    rps: float = 0.0  # the flow's own unit: questions/s (full), requests/s (cheap, chain)
    total_rps: float = 0.0  # every HTTP request Locust made
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    poll_p95_ms: float | None = None
    jobs: int | None = None
    job_failures: int | None = None
    job_p50_ms: float | None = None
    job_p95_ms: float | None = None
    stack_cpu_pct: float = 0.0
    stack_rss_max_mib: float = 0.0
    processes: dict[str, ProcessStats] = field(default_factory=dict)
    slices: int | None = None  # an arm of the comparison: how many slices were merged

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.slices is None:
            del out["slices"]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        procs = {n: ProcessStats(**p) for n, p in d.get("processes", {}).items()}
        return cls(**{**d, "processes": procs})


@dataclass
class Meta:
    """The machine and the commit: stamped at the start of the run."""

    date: str
    cores: int
    memory_gib: float
    cpu_model: str
    python: str
    commit: str
    load_before: list[float]
    short: bool
    chain_hops: int


@dataclass
class Runs:
    full: list[RunResult] = field(default_factory=list)
    cheap: list[RunResult] = field(default_factory=list)

    def of(self, flow: str) -> list[RunResult]:
        return self.full if flow == "full" else self.cheap


@dataclass
class Profile:
    service: str
    file: str
    questions_per_s: float
    packages: dict[str, float]  # percent of self samples per package, largest first


@dataclass
class Ratios:
    full_vs_chain: float = 0.0
    full_gateway_requests_vs_chain: float = 0.0
    telemetry_on_vs_off: float = 0.0
    fix_after_vs_before: float = 0.0


@dataclass
class RatioRounds:
    telemetry_on_vs_off: list[float] = field(default_factory=list)
    fix_after_vs_before: list[float] = field(default_factory=list)


@dataclass
class Target:
    key: str
    what: str
    target: str
    target_value: float
    measured: Any  # a ratio (float) or a figure with its unit (str)
    ok: bool


def _plan_to_dict(plan: Plan) -> dict[str, Any]:
    # The derived figures too, so the report never recomputes them from the levels.
    return {**asdict(plan), "middle": plan.middle, "top": plan.top, "slice": plan.slice}


def _plan_from_dict(d: dict[str, Any]) -> Plan:
    return Plan(**{f.name: d[f.name] for f in fields(Plan)})


@dataclass
class BenchResults:
    """One `workshop bench` run. The fields after `chain` are filled by derive() and
    write_report(); the JSON keeps this order."""

    meta: Meta
    plan: Plan
    runs: Runs
    validation: dict[str, Any] | None
    startup_s: float
    idle_rss_mib: dict[str, float]
    idle_stack_mib: float
    ui: dict[str, Any] | None
    profile: Profile | None
    startup_before_fix_s: float
    startup_otel_off_s: float
    full_otel_on: RunResult
    full_before_fix: RunResult
    full_otel_off: RunResult
    rounds: list[dict[str, float]]  # per round: questions/s of each arm ("on", "before", "off")
    chain: RunResult
    loaded_rss_mib: dict[str, float] = field(default_factory=dict)
    loaded_stack_mib: float = 0.0
    ratios: Ratios = field(default_factory=Ratios)
    ratio_rounds: RatioRounds = field(default_factory=RatioRounds)
    targets: list[Target] = field(default_factory=list)
    plots: dict[str, str] = field(default_factory=dict)
    json_file: str = ""

    def run_at(self, users: int) -> RunResult:
        """The full flow's run at this level."""
        return next(r for r in self.runs.full if r.users == users)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("validation", "ui", "profile") and value is None:
                continue  # absent from the JSON when not measured
            if f.name == "plan":
                out[f.name] = _plan_to_dict(value)
            elif f.name == "runs":
                out[f.name] = {
                    "full": [r.to_dict() for r in value.full],
                    "cheap": [r.to_dict() for r in value.cheap],
                }
            elif isinstance(value, RunResult):
                out[f.name] = value.to_dict()
            elif f.name in ("meta", "profile", "ratios", "ratio_rounds"):
                out[f.name] = asdict(value)
            elif f.name == "targets":
                out[f.name] = [asdict(t) for t in value]
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchResults:
        run = RunResult.from_dict
        return cls(
            meta=Meta(**d["meta"]),
            plan=_plan_from_dict(d["plan"]),
            runs=Runs(
                full=[run(r) for r in d["runs"]["full"]],
                cheap=[run(r) for r in d["runs"]["cheap"]],
            ),
            validation=d.get("validation"),
            startup_s=d["startup_s"],
            idle_rss_mib=d["idle_rss_mib"],
            idle_stack_mib=d["idle_stack_mib"],
            ui=d.get("ui"),
            profile=Profile(**d["profile"]) if "profile" in d else None,
            startup_before_fix_s=d["startup_before_fix_s"],
            startup_otel_off_s=d["startup_otel_off_s"],
            full_otel_on=run(d["full_otel_on"]),
            full_before_fix=run(d["full_before_fix"]),
            full_otel_off=run(d["full_otel_off"]),
            rounds=d["rounds"],
            chain=run(d["chain"]),
            loaded_rss_mib=d.get("loaded_rss_mib", {}),
            loaded_stack_mib=d.get("loaded_stack_mib", 0.0),
            ratios=Ratios(**d.get("ratios", {})),
            ratio_rounds=RatioRounds(**d.get("ratio_rounds", {})),
            targets=[Target(**t) for t in d.get("targets", [])],
            plots=d.get("plots", {}),
            json_file=d.get("json_file", ""),
        )
