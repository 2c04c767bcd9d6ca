"""`workshop bench --budget t3.small`: what the kit costs a burstable VM, measured here.

A t3 instance earns CPU credits at a fixed rate; one credit is one vCPU at 100 % for a minute,
so its sustained baseline is `credits_per_hour / 60` vCPUs (t3.small: 24/h → 0.4 vCPU). In
standard mode an empty balance throttles the VM to that baseline; in unlimited mode (the T3
default) it keeps running and the surplus is billed. Sources: the AWS EC2 User Guide,
"Key concepts for burstable performance instances" (credit table) and the RunInstances
CreditSpecification reference ("Default: ... unlimited (T3/T3a/T4g instances)").

Measured, in one run, on two native stacks side by side (this arm and the baseline arm, which
sets issue 19's fixes back: BASELINE_ENV below, the one list of them):

1. idle CPU of every process, both stacks sampled over the same seconds, before and after the
   busy slices (each arm keeps its quieter window);
2. one attendee's lab traffic (the labs' own builtin engine: 4 users, the labs' default
   pauses), alternating between the stacks in slices: questions per second per attendee, and
   CPU per question per process (the window's CPU minus the idle rate).

Computed from those figures (the model is unit-tested with synthetic figures):

- the sustainable question rate on the baseline: (baseline − idle) ÷ CPU per question;
- a 3-hour workshop: the attendee labs in order, each run by every attendee once in its slot
  (starts staggered over the slot's first minutes), at the rates the lab specs ask for; the
  credit balance minute by minute for a room of N, and the largest N that is never throttled
  and never needs more than 90 % of the vCPUs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.native.collector import COLLECTOR_DIR
from workshop import bench_floor, bench_one_process, bench_wakeup

if TYPE_CHECKING:
    from labs.runtime.traffic import TrafficRun

SLOT_STAGGER_MIN = 8.0  # attendees start a lab's traffic spread over this many minutes
BUSY_PAUSE_S = 0.15  # the builtin engine's mean pause without think_s: uniform(0.05, 0.25)
PEAK_SHARE = 0.9  # the room must fit in this share of the vCPUs at its busiest minute
ATTENDEE_USERS = 4  # one attendee's lab traffic: the labs' builtin engine with 4 users
PREP_HOURS = 1.0  # the VM runs idle this long before the room arrives (credits to start with)
# Issue 19's fixes set back: the budget bench's baseline arm (the report words each entry:
# workshop/bench_budget_doc.py).
BASELINE_ENV = {
    "FAULT_POLL_SECONDS": "0.5",
    "SERVER_TICK_SECONDS": "0.1",
    "RESPONSE_WRITES": "uvicorn",
    "WORKER_BLOCK_MS": "1000",
    "REDIS_HZ": "10",
    "OTLP_SPAN_ENCODER": "sdk",
    "SPAN_PATH": "sdk",
    "SERVER_SPANS": "fastapi",
    "JSON_ROUTES": "fastapi",
    "BATCH_WORKER": "sdk",
    "CLIENT_SPANS": "packages",
    "HTTP_CLIENT": "aiohttp",
    "STORAGE_DB_CALLS": "threadpool",
    "SESSION_REFRESH": "every",
    "LOG_FLUSH_MS": "0",
    "OTEL_PROPAGATORS": "tracecontext,baggage",
    "METRIC_IDLE_EXPORT_MS": "0",
    "PYTHON_GC_THRESHOLD": "700,10,10",
    "COLLECTOR_CONFIG_OVERLAYS": str(COLLECTOR_DIR / "test" / "budget-baseline.yaml"),
}


@dataclass(frozen=True)
class Instance:
    name: str
    vcpus: int
    credits_per_hour: float
    max_credits: float

    @property
    def baseline_vcpu(self) -> float:
        return self.credits_per_hour / 60


# The AWS EC2 User Guide's credit table (earned per hour, maximum accrued = 24 h of earning).
INSTANCES = {
    i.name: i
    for i in (
        Instance("t3.micro", 2, 12, 288),
        Instance("t3.small", 2, 24, 576),
        Instance("t3.medium", 2, 24, 576),
        Instance("t3.large", 2, 36, 864),
    )
}


@dataclass(frozen=True)
class LabLoad:
    """One lab's traffic as its spec asks for it (full mode)."""

    name: str
    users: int
    duration_s: float
    think_s: float | None = None


@dataclass
class Figures:
    """The measured inputs of the model."""

    idle_ms_per_s: float  # the whole stack at rest
    cpu_ms_per_question: float  # the whole stack, above idle, per question of lab traffic
    questions_per_s_per_user: float  # the builtin engine, busy pauses, measured
    per_process_ms_per_question: dict[str, float] = field(default_factory=dict)

    def user_rate(self, think_s: float | None) -> float:
        """Questions/s of one traffic user: the measured loop time with the lab's pause."""
        if not think_s:
            return self.questions_per_s_per_user
        overhead = max(0.0, 1 / self.questions_per_s_per_user - BUSY_PAUSE_S)
        return 1 / (overhead + think_s)


def sustainable_rate(inst: Instance, f: Figures) -> float:
    """Questions/s the instance sustains on its baseline alone, after the idle stack."""
    spare = inst.baseline_vcpu * 1000 - f.idle_ms_per_s
    return max(0.0, spare) / f.cpu_ms_per_question if f.cpu_ms_per_question > 0 else 0.0


def demand(
    labs: Sequence[LabLoad], f: Figures, attendees: int, minutes: float = 180.0
) -> list[float]:
    """vCPUs the stack needs in each minute of the workshop for a room of `attendees`."""
    slot = minutes / max(1, len(labs))
    per_min = [f.idle_ms_per_s / 1000] * int(minutes)
    for k, lab in enumerate(labs):
        vcpu = lab.users * f.user_rate(lab.think_s) * f.cpu_ms_per_question / 1000
        for a in range(attendees):
            start = k * slot + (a / attendees) * min(SLOT_STAGGER_MIN, slot)
            end = start + lab.duration_s / 60
            for m in range(int(start), min(int(minutes), int(end) + 1)):
                overlap = min(end, m + 1) - max(start, m)
                if overlap > 0:
                    per_min[m] += vcpu * overlap
    return per_min


@dataclass
class Simulation:
    attendees: int
    balance: list[float]  # credits at the end of each minute
    throttled_min: int  # minutes spent at the baseline (standard mode)
    peak_vcpu: float
    surplus_credits: float  # what unlimited mode would bill


def simulate(inst: Instance, per_min: Sequence[float], start_credits: float = 0.0) -> Simulation:
    """Minute by minute, standard mode: earn, spend; an empty balance caps use at the baseline.
    `surplus_credits` is what the same minutes would cost past an empty balance in unlimited
    mode."""
    earn = inst.credits_per_hour / 60
    balance, throttled, surplus = start_credits, 0, 0.0
    trace: list[float] = []
    for need in per_min:
        use = min(need, inst.vcpus)  # credits this minute: vCPU-minutes
        if balance + earn - use < 0:
            throttled += 1
            surplus += use - (balance + earn)
            balance = 0.0
        else:
            balance = min(inst.max_credits, balance + earn - use)
        trace.append(round(balance, 2))
    return Simulation(0, trace, throttled, max(per_min, default=0.0), round(surplus, 1))


def start_balance(inst: Instance, f: Figures, hours: float = PREP_HOURS) -> float:
    """The balance at the workshop's start: what the idle stack leaves of `hours` of earning
    (the instructor sets the VM up beforehand; a T3 gets no launch credits)."""
    spare = inst.credits_per_hour - f.idle_ms_per_s / 1000 * 60
    return max(0.0, min(inst.max_credits, spare * hours))


def room_capacity(
    inst: Instance,
    labs: Sequence[LabLoad],
    f: Figures,
    limit: int = 200,
    start_credits: float | None = None,
) -> tuple[int, dict[int, Simulation]]:
    """The largest room never throttled in standard mode and never above PEAK_SHARE of the
    vCPUs; with the simulation of each room size tried."""
    start = start_balance(inst, f) if start_credits is None else start_credits
    sims: dict[int, Simulation] = {}
    best = 0
    for n in range(1, limit + 1):
        per_min = demand(labs, f, n)
        sim = simulate(inst, per_min, start)
        sim.attendees = n
        sims[n] = sim
        if sim.throttled_min == 0 and sim.peak_vcpu <= PEAK_SHARE * inst.vcpus + 1e-9:
            best = n
        elif n > best + 3:  # past the edge: larger rooms only need more
            break
    return best, sims


def lab_loads() -> list[LabLoad]:
    """The attendee labs' traffic, from labs/specs (the instructor's notebook excluded)."""
    from labs.runtime import all_specs

    return [
        LabLoad(s.name, s.traffic.users, s.traffic.duration_s, s.traffic.think_s)
        for s in all_specs()
        if s.name != "instructor"
    ]


# ------------------------------------------------------------------------- measurement
def idle_window(arms: dict[str, dict[str, int]], seconds: float) -> dict[str, dict[str, float]]:
    """ms of CPU per second of every process of every arm, over the same `seconds`, from
    schedstat (nanoseconds: an idle service uses a few 10 ms clock ticks in a window, so
    ticks would round each process by as much as it measures)."""
    grown, process_cpu_ns = bench_wakeup.grown, bench_wakeup.process_cpu_ns
    before = {arm: {n: process_cpu_ns(p) for n, p in pids.items()} for arm, pids in arms.items()}
    time.sleep(seconds)
    return {
        arm: {n: round(grown(before[arm][n], process_cpu_ns(p)) / seconds / 1e6, 2)
              for n, p in pids.items()}
        for arm, pids in arms.items()
    }  # fmt: skip


def quietest(windows: Sequence[dict[str, float]]) -> dict[str, float]:
    """The window whose total is lowest: what the stack itself costs at rest, with the least
    of whatever else this machine was doing (idle CPU is a few ms a second, and a neighbour's
    burst in one window can double it)."""
    return min(windows, key=lambda w: sum(w.values()))


def per_question(
    report: dict[str, dict[str, float]], idle: dict[str, float], wall: float, questions: int
) -> dict[str, float]:
    """ms of CPU per question of each process: the window's CPU above its idle rate."""
    if questions <= 0:
        return {}
    out = {}
    for name, r in report.items():
        busy_ms = r["cpu_s"] * 1000 - idle.get(name, 0.0) * wall
        out[name] = round(max(0.0, busy_ms) / questions, 3)
    return out


def _stack_only(per_process: dict[str, float]) -> dict[str, float]:
    """The stack's processes: supervisord only watches them (it is not counted in either
    arm's CPU per question, net or gross)."""
    return {name: v for name, v in per_process.items() if name != "supervisord"}


def one_attendee(url: str, seconds: float, name: str) -> TrafficRun:
    """One attendee's lab traffic to the gateway at `url` for `seconds`, waited for (the
    labs' TrafficRun)."""
    from labs.runtime import traffic

    run = traffic.start(url, users=ATTENDEE_USERS, duration_s=seconds, attendees=[name])
    return run.wait(seconds + 30)


def measure(
    up: Callable[[str, dict[str, str]], tuple[str, dict[str, int]]],
    sampler: Callable[[dict[str, int]], Any],
    *,
    idle_s: float,
    slice_s: float,
    rounds: int,
    settle_s: float,
    step: Callable[[str], None] = lambda _m: None,
    idle_cpu: Callable[[dict[str, dict[str, int]], float], dict[str, dict[str, float]]] = (
        idle_window
    ),
) -> dict[str, Any]:
    """Both arms: `up(label, env)` starts a stack and returns (gateway URL, pids). Idle is
    measured before and after the busy slices, both stacks over the same seconds each time;
    each arm keeps its quieter window, and the busy slices subtract that one."""
    arms = {"now": up("now", {}), "before": up("before", dict(BASELINE_ENV))}
    # Idle as between two labs: after traffic, so every counter and gauge exists and is
    # exported on its interval (a stack that never served a question exports no metrics).
    for label, (url, _pids) in arms.items():
        step(f"{label}: warming up with {slice_s / 4:.0f} s of lab traffic")
        one_attendee(url, slice_s / 4, "budget-warmup")
    step(f"settling {settle_s:.0f} s")
    time.sleep(settle_s)
    pids_of = {label: pids for label, (_url, pids) in arms.items()}
    step(f"idle CPU, both stacks, {idle_s:.0f} s")
    windows = [idle_cpu(pids_of, idle_s)]
    busy: dict[str, list[tuple[dict[str, dict[str, float]], int, float]]] = {
        "now": [],
        "before": [],
    }
    for rnd in range(rounds):
        order = ["now", "before"] if rnd % 2 == 0 else ["before", "now"]
        for label in order:
            step(f"lab traffic, one attendee, round {rnd + 1}/{rounds}: {label}")
            url, pids = arms[label]
            with sampler(pids) as s:
                run = one_attendee(url, slice_s, "budget")
            wall = max(run.elapsed, 1e-6)
            busy[label].append((s.report(wall=wall), run.asked(), wall))
    step(f"idle CPU again, both stacks, {idle_s:.0f} s")
    windows.append(idle_cpu(pids_of, idle_s))
    out: dict[str, Any] = {"idle_s": idle_s, "slice_s": slice_s, "rounds": rounds, "arms": {}}
    for label in arms:
        idle = quietest([w[label] for w in windows])
        slices = [
            (per_question(report, idle, wall, asked), asked, wall,
             sum(_stack_only(per_question(report, {}, wall, asked)).values()))
            for report, asked, wall in busy[label]
        ]  # fmt: skip
        names = slices[0][0].keys() if slices else []
        per_proc = {n: round(statistics.median(sl[0][n] for sl in slices), 3) for n in names}
        stack_procs = _stack_only(per_proc)
        out["arms"][label] = {
            "idle_ms_per_s": idle,
            "idle_total_ms_per_s": round(sum(idle.values()), 2),
            "idle_windows_ms_per_s": [round(sum(w[label].values()), 2) for w in windows],
            "ms_per_question": stack_procs,
            "ms_per_question_total": round(sum(stack_procs.values()), 2),
            "questions_per_s_per_attendee": round(
                statistics.median(a / w for _p, a, w, _g in slices), 2
            ),
            # the window's whole CPU per question, idle included (see render())
            "ms_per_question_gross_total": round(
                statistics.median(g for _p, _a, _w, g in slices), 2
            ),
        }
    return out


def figures(arm: dict[str, Any]) -> Figures:
    return Figures(
        idle_ms_per_s=arm["idle_total_ms_per_s"],
        cpu_ms_per_question=arm["ms_per_question_total"],
        questions_per_s_per_user=arm["questions_per_s_per_attendee"] / ATTENDEE_USERS,
        per_process_ms_per_question=arm["ms_per_question"],
    )


def analyse(
    measured: dict[str, Any], labs: Sequence[LabLoad], extra: str = "t3.small"
) -> dict[str, Any]:
    out: dict[str, Any] = {"instances": {}}
    for label, arm in measured["arms"].items():
        f = figures(arm)
        per = {}
        for name in dict.fromkeys(("t3.small", "t3.medium", extra)):
            inst = INSTANCES[name]
            cap, sims = room_capacity(inst, labs, f)
            per[name] = {
                "baseline_vcpu": inst.baseline_vcpu,
                "start_credits": round(start_balance(inst, f), 1),
                "sustainable_questions_per_s": round(sustainable_rate(inst, f), 1),
                "attendees": cap,
                "sims": {n: sims[n] for n in sims},
            }
        out["instances"][label] = per
    return out


# ----------------------------------------------------------------------------- report
def plot(analysis: dict[str, Any], path: Path, instance: str = "t3.small") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t3 = analysis["instances"]["now"][instance]
    inst = INSTANCES[instance]
    cap = t3["attendees"]
    sizes = sorted({1, max(1, cap), cap + 2, cap * 2 or 2, cap * 4 or 4} & set(t3["sims"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    for n in sizes:
        sim: Simulation = t3["sims"][n]
        label = f"{n} attendee" + ("s" if n != 1 else "")
        ax.plot(range(1, len(sim.balance) + 1), sim.balance, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("minute of a 3-hour workshop (labs 00–07 in order)")
    ax.set_ylabel(f"CPU credit balance ({instance}, standard mode)")
    ax.set_title(f"{instance} credits: at 0 the VM is throttled to {inst.baseline_vcpu:.1f} vCPU")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _floor(
    configs: dict[str, Any],
    up: Callable[[str, dict[str, str]], tuple[str, dict[str, int]]],
    down: Callable[[Any], object],
    lab_s: float,
    step: Callable[[str], None],
    *,
    short: bool,
) -> dict[str, Any]:
    """bench_floor's decomposition. The baseline arm's stack (idle at several times the
    as-built rate) gives way to one with telemetry off; the as-built and telemetry-off stacks
    then take turns under the same lab traffic, each with the other idle beside it, and each
    keeps its lowest round (as the cold-wakeup probe does); then the bare app."""
    from stack.common.settings import ServiceName
    from workshop.bench import stack_pids

    down(configs["before"])
    arms = {"now": (configs["now"].url(ServiceName.GATEWAY), stack_pids(configs["now"]))}
    arms["off"] = up("off", {"OTEL_SDK_DISABLED": "true"})
    one_attendee(arms["off"][0], lab_s, "budget-off-warm")  # warm, as the built stack is
    runs: dict[str, list[dict[str, Any]]] = {"now": [], "off": []}
    rounds = 1 if short else 2
    for rnd in range(rounds):
        for label in ("now", "off") if rnd % 2 == 0 else ("off", "now"):
            step(f"where the CPU goes: lab traffic, round {rnd + 1}/{rounds}: {label}")
            url, pids = arms[label]

            def traffic(url: str = url) -> int:
                return one_attendee(url, lab_s, "budget-floor").asked()

            runs[label].append(bench_wakeup.lab_costs(pids, traffic))
    down(configs["off"])
    step("where the CPU goes: a bare ASGI app, back to back and paced")
    bare = bench_floor.bare_costs(n=50 if short else 300, rounds=rounds)
    lowest = {k: min(v, key=lambda r: r["ms_per_question"]) for k, v in runs.items()}
    return bench_floor.decompose(lowest["now"], lowest["off"], bare, rounds)


def run(
    instance: str,
    out: Path,
    data_dir: Path,
    *,
    short: bool = False,
    step: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Measure both arms on native stacks, analyse, and splice the section into `out`."""
    import json

    from stack.common.settings import ServiceName
    from stack.native import launcher
    from workshop.bench import Sampler, bench_config, fresh_dir, stack_pids
    from workshop.bench_budget_doc import SIZING, render, render_sizing, splice

    if instance not in INSTANCES:
        raise ValueError(f"--budget: one of {', '.join(INSTANCES)}")
    from workshop.bench.host import machine

    fresh_dir(data_dir)
    stamp = machine()  # before the stacks start: the load average is the machine's own
    base = bench_config(data_dir / "now")
    configs = {
        "now": base,
        "before": base.shifted(200, data_dir / "before"),
        "off": base.shifted(400, data_dir / "off"),
    }
    started: list[Any] = []

    def up(label: str, env: dict[str, str]) -> tuple[str, dict[str, int]]:
        cfg = configs[label] = configs[label].with_env(env)
        launcher.down(cfg)
        step(f"{label}: starting the stack")
        launcher.up(cfg, collector=True, nginx=False, timeout=120)
        started.append(cfg)
        return cfg.url(ServiceName.GATEWAY), stack_pids(cfg)

    try:
        measured = measure(
            up,
            Sampler,
            idle_s=8 if short else 40,
            slice_s=5 if short else 20,
            rounds=2 if short else 4,
            settle_s=5 if short else 20,
            step=step,
        )
        step("cold-wakeup probe: validation-service back to back and paced")
        now_cfg = configs["now"]
        now_pids = stack_pids(now_cfg)
        lab_s = 5 if short else 20
        measured["wakeup"] = bench_wakeup.measure(
            now_cfg.url(ServiceName.VALIDATION) + "/validate",
            now_pids[ServiceName.VALIDATION.value],
            now_pids,
            lambda: one_attendee(now_cfg.url(ServiceName.GATEWAY), lab_s, "budget-probe").asked(),
            lab_s,
            n=50 if short else 300,
            rounds=1 if short else 2,
        )
        measured["one_process"] = bench_one_process.measure(
            now_cfg,
            now_pids,
            lambda: one_attendee(now_cfg.url(ServiceName.GATEWAY), lab_s, "budget-one").asked(),
            measured["wakeup"]["lab"],
            data_dir / "one-process.log",
            step,
        )
        measured["floor"] = _floor(configs, up, launcher.down, lab_s, step, short=short)
        measured["machine"] = stamp
    finally:
        for cfg in started:
            launcher.down(cfg)
    analysis = analyse(measured, lab_loads(), instance)
    plot_rel = f"benchmarks/budget-{instance}.png"
    plot(analysis, out.parent / plot_rel, instance)
    text = render(measured, analysis, plot_rel)
    out.write_text(splice(out.read_text() if out.exists() else "", text))
    summary = {
        "measured": measured,
        "instances": {
            arm: {k: {kk: vv for kk, vv in v.items() if kk != "sims"} for k, v in per.items()}
            for arm, per in analysis["instances"].items()
        },
    }
    (out.parent / "benchmarks" / f"budget-{instance}.json").write_text(
        json.dumps(summary, indent=2) + "\n"
    )
    if instance == "t3.small" and (sizing := out.parent / "deploy-vm.md").exists():
        docker = out.parent / "benchmarks" / "docker-cpu.json"
        figures = json.loads(docker.read_text()) if docker.exists() else None
        SIZING.rewrite(sizing, render_sizing(summary, figures))
    return summary
