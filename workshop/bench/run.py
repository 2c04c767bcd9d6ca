"""The run, in order (see the package's docstring), and the figures derived from it."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.progress import Progress

from stack.common.settings import ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError
from workshop import bench_ui, validation_bench
from workshop.bench.host import machine
from workshop.bench.locust import run_locust
from workshop.bench.plan import (
    BEFORE_FIX_ENV,
    CHAIN_HOPS,
    PYTHON_SERVICES,
    TARGETS,
    Plan,
    bench_config,
    chain_ports,
)
from workshop.bench.profile import run_profile
from workshop.bench.report import write_report
from workshop.bench.results import (
    BenchResults,
    Meta,
    ProcessStats,
    Profile,
    RatioRounds,
    Ratios,
    RunResult,
    Runs,
    Target,
)
from workshop.bench.stack import chain, fresh_dir, idle_rss, stack_pids


def merge_slices(runs: list[RunResult]) -> RunResult:
    """One arm's equal-length slices → one run: throughput and CPU % are the slices' mean,
    counts and CPU seconds their sum, each latency percentile the median of the slices'."""

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2)

    def median(key: str) -> float:
        return float(statistics.median(getattr(r, key) or 0.0 for r in runs))

    requests = sum(r.requests for r in runs)
    failures = sum(r.failures for r in runs)
    processes: dict[str, ProcessStats] = {}
    for name in runs[0].processes:
        per = [r.processes[name] for r in runs if name in r.processes]
        processes[name] = ProcessStats(
            cpu_s=round(sum(p.cpu_s for p in per), 3),
            cpu_pct=mean([p.cpu_pct for p in per]),
            rss_mean_mib=mean([p.rss_mean_mib for p in per]),
            rss_max_mib=max(p.rss_max_mib for p in per),
        )
    return RunResult(
        flow=runs[0].flow,
        users=runs[0].users,
        duration=sum(r.duration for r in runs),
        requests=requests,
        failures=failures,
        error_ratio=round(failures / requests, 4) if requests else 0.0,
        rps=mean([r.rps for r in runs]),
        total_rps=mean([r.total_rps for r in runs]),
        p50_ms=median("p50_ms"),
        p95_ms=median("p95_ms"),
        p99_ms=median("p99_ms"),
        poll_p95_ms=median("poll_p95_ms"),
        jobs=sum(r.jobs or 0 for r in runs),
        job_failures=sum(r.job_failures or 0 for r in runs),
        job_p50_ms=median("job_p50_ms"),
        job_p95_ms=median("job_p95_ms"),
        stack_cpu_pct=round(sum(r.stack_cpu_pct for r in runs) / len(runs), 1),
        stack_rss_max_mib=max(r.stack_rss_max_mib for r in runs),
        processes=processes,
        slices=len(runs),
    )


def run_bench(
    plan: Plan,
    out: Path,
    data_dir: Path,
    profile: str | None,
    progress: Progress,
) -> BenchResults:
    from stack.native import collector as collector_mod

    if not collector_mod.collector_binary().exists():
        raise LaunchError(
            "the collector is not built: run `make collector` before `workshop bench`"
        )
    fresh_dir(data_dir)
    work = data_dir / "locust"
    work.mkdir()
    cfg = bench_config(data_dir / "stack")
    # The comparison's other two arms run beside the main stack, on shifted ports.
    cfg_before = cfg.shifted(200, data_dir / "stack-before-fix").with_env(BEFORE_FIX_ENV)
    cfg_off = cfg.shifted(400, data_dir / "stack-otel-off").with_env({"OTEL_SDK_DISABLED": "true"})
    host = cfg.url(ServiceName.GATEWAY)
    steps = 2 * len(plan.levels) + 5 + 3 * plan.rounds + (1 if profile else 0)  # done() calls
    task = progress.add_task("benchmark", total=steps)
    meta = Meta(**machine(), short=plan.short, chain_hops=CHAIN_HOPS)
    runs = Runs()
    prof: Profile | None = None

    def step(msg: str) -> None:
        progress.update(task, description=msg)

    # 0. DataPrime validation, in-process, before any stack competes for the CPU
    step("DataPrime validation: corpus, then today's vs before side by side")
    validation = validation_bench.measure(rounds=3 if plan.short else 15)

    def done() -> None:
        progress.advance(task)

    def up(c: NativeConfig, label: str) -> float:
        launcher.down(c)
        step(f"{label}: starting the stack")
        t0 = time.monotonic()
        launcher.up(
            c, collector=True, nginx=False, timeout=120, progress=lambda m: step(f"{label}: {m}")
        )
        return round(time.monotonic() - t0, 2)

    def warmup(c: NativeConfig, pids: dict[str, int], names: list[str], label: str) -> None:
        step(f"{label}: warm-up ({plan.warmup:.0f} s)")
        users = min(plan.levels)
        run_locust(
            "full",
            users,
            plan.warmup,
            c.url(ServiceName.GATEWAY),
            pids,
            names,
            work,
            f"warmup-{label}",
        )

    try:
        # 1. up, warm-up, idle footprint
        startup_s = up(cfg, "telemetry on")
        done()
        pids = stack_pids(cfg)
        names = list(pids)
        warmup(cfg, pids, names, "on")
        step("idle footprint")
        time.sleep(plan.settle)
        idle = idle_rss(pids, plan.settle * 2)
        done()
        # The web UI's chart and waterfall endpoints, and what they cost with no page open.
        step("web UI endpoints (charts, waterfalls, idle cost)")
        ui = bench_ui.run(pids[ServiceName.GATEWAY.value], host, short=plan.short)

        # 2. every level: full flow, cheap endpoint
        for users in plan.levels:
            for flow in ("full", "cheap"):
                step(f"{flow} flow @ {users} users ({plan.duration:.0f} s)")
                r = run_locust(
                    flow, users, plan.duration, host, pids, names, work, f"{flow}-{users}"
                )
                runs.of(flow).append(r)
                done()

        # 3. profile the service that used the most CPU at the top level
        if profile:
            top = next(r for r in runs.full if r.users == plan.top)
            target = profile
            if profile == "auto":
                target = max(
                    (n for n in top.processes if n in PYTHON_SERVICES),
                    key=lambda n: top.processes[n].cpu_s,
                )
            prof = run_profile(plan, target, cfg, pids, names, work, out, step)
            done()

        # 4. the comparison at the middle level: the stack as built ("on"), with the
        # profiling fix undone ("before") and with telemetry off ("off"), all three up at
        # once; Locust alternates between them in short slices, rotating the order each
        # round, so a change in the machine's speed during the run hits every arm alike.
        step("starting the comparison stacks (fix undone; telemetry off)")
        startup_before_fix_s = up(cfg_before, "before the fix")
        startup_otel_off_s = up(cfg_off, "telemetry off")
        arms = {"on": cfg, "before": cfg_before, "off": cfg_off}
        arm_pids = {"on": pids, "before": stack_pids(cfg_before), "off": stack_pids(cfg_off)}
        for arm in ("before", "off"):
            warmup(arms[arm], arm_pids[arm], list(arm_pids[arm]), arm)
        done()
        slices: dict[str, list[RunResult]] = {arm: [] for arm in arms}
        for rnd in range(plan.rounds):
            order = list(arms)[rnd % 3 :] + list(arms)[: rnd % 3]
            for arm in order:
                step(
                    f"round {rnd + 1}/{plan.rounds}: {arm}, full flow @ {plan.middle} users "
                    f"({plan.slice:.0f} s)"
                )
                slices[arm].append(
                    run_locust(
                        "full",
                        plan.middle,
                        plan.slice,
                        arms[arm].url(ServiceName.GATEWAY),
                        arm_pids[arm],
                        list(arm_pids[arm]),
                        work,
                        f"full-{arm}-{plan.middle}-round{rnd + 1}",
                    )
                )
                done()
        rounds = [{arm: slices[arm][rnd].rps for arm in arms} for rnd in range(plan.rounds)]
        for c in arms.values():
            launcher.down(c)

        # 5. the ceiling, with the stack down
        step(f"chain of {CHAIN_HOPS} bare hops @ {plan.middle} users ({plan.chain_duration:.0f} s)")
        with chain(cfg, work) as hop_pids:
            r_chain = run_locust(
                "chain",
                plan.middle,
                plan.chain_duration,
                f"http://127.0.0.1:{chain_ports(cfg)[0]}",
                hop_pids,
                list(hop_pids),
                work,
                f"chain-{plan.middle}",
            )
        done()
    finally:
        step("stopping the stack")
        for c in (cfg, cfg_before, cfg_off):
            launcher.down(c)

    results = BenchResults(
        meta=meta,
        plan=plan,
        runs=runs,
        validation=validation,
        startup_s=startup_s,
        idle_rss_mib=idle,
        idle_stack_mib=round(sum(idle.values()), 1),
        ui=ui,
        profile=prof,
        startup_before_fix_s=startup_before_fix_s,
        startup_otel_off_s=startup_otel_off_s,
        full_otel_on=merge_slices(slices["on"]),
        full_before_fix=merge_slices(slices["before"]),
        full_otel_off=merge_slices(slices["off"]),
        rounds=rounds,
        chain=r_chain,
    )
    derive(results, plan)
    step("writing the report")
    write_report(results, out)
    done()
    return results


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def derive(results: BenchResults, plan: Plan) -> None:
    """The figures computed from the runs: loaded footprint, ratios, the targets."""
    full = {r.users: r for r in results.runs.full}
    mid, top = full[plan.middle], full[plan.top]
    chain_r = results.chain
    on, off = results.full_otel_on, results.full_otel_off
    before = results.full_before_fix
    every = [*results.runs.full, *results.runs.cheap, on, before, off, chain_r]
    python_idle = {n: v for n, v in results.idle_rss_mib.items() if n in PYTHON_SERVICES}
    heaviest = max(python_idle, key=lambda n: python_idle[n]) if python_idle else ""
    results.loaded_rss_mib = {n: v.rss_max_mib for n, v in top.processes.items()}
    results.loaded_stack_mib = top.stack_rss_max_mib
    ratios = results.ratios = Ratios(
        full_vs_chain=_ratio(mid.rps, chain_r.rps),
        full_gateway_requests_vs_chain=_ratio(mid.total_rps, chain_r.rps),
        telemetry_on_vs_off=_ratio(on.rps, off.rps),
        fix_after_vs_before=_ratio(on.rps, before.rps),
    )
    # The same ratios round by round: their spread is the measurement's noise.
    results.ratio_rounds = RatioRounds(
        telemetry_on_vs_off=[_ratio(r["on"], r["off"]) for r in results.rounds],
        fix_after_vs_before=[_ratio(r["on"], r["before"]) for r in results.rounds],
    )
    errors = sum(r.failures for r in every)
    mid_p95, mid_job_p95 = mid.p95_ms, mid.job_p95_ms or 0.0
    t = TARGETS
    results.targets = [
        _target(
            "full_vs_chain",
            f"full flow @ {plan.middle}: questions/s ÷ chain req/s",
            f"≥ {t['full_vs_chain']}",
            ratios.full_vs_chain,
            ratios.full_vs_chain >= t["full_vs_chain"],
        ),
        _target(
            "p95_ms",
            f"full flow @ {plan.middle}: POST /api/queries p95",
            f"≤ {t['p95_ms']:.0f} ms",
            f"{mid_p95:.0f} ms",
            mid_p95 <= t["p95_ms"],
        ),
        _target(
            "job_p95_ms",
            f"full flow @ {plan.middle}: job submit→done p95",
            f"≤ {t['job_p95_ms']:.0f} ms",
            f"{mid_job_p95:.0f} ms",
            mid_job_p95 <= t["job_p95_ms"],
        ),
        _target(
            "questions_per_s_19",
            f"full flow @ {plan.middle}: questions/s (issue 19)",
            f"≥ {t['questions_per_s_19']:.0f}",
            f"{mid.rps:.1f}",
            mid.rps >= t["questions_per_s_19"],
        ),
        _target(
            "p95_ms_19",
            f"full flow @ {plan.middle}: POST /api/queries p95 (issue 19)",
            f"≤ {t['p95_ms_19']:.0f} ms",
            f"{mid_p95:.0f} ms",
            mid_p95 <= t["p95_ms_19"],
        ),
        _target("errors", "errors (every run)", "0", f"{errors}", errors == 0),
        _target(
            "telemetry_ratio",
            f"telemetry on ÷ off (full flow @ {plan.middle})",
            f"≥ {t['telemetry_ratio']}",
            ratios.telemetry_on_vs_off,
            ratios.telemetry_on_vs_off >= t["telemetry_ratio"],
        ),
        _target(
            "telemetry_ratio_19",
            f"telemetry on ÷ off (full flow @ {plan.middle}, issue 19)",
            f"≥ {t['telemetry_ratio_19']}",
            ratios.telemetry_on_vs_off,
            ratios.telemetry_on_vs_off >= t["telemetry_ratio_19"],
        ),
        _target(
            "idle_stack_mib",
            "whole stack RSS, idle",
            "≤ 1.0 GiB",
            f"{results.idle_stack_mib:.0f} MiB",
            results.idle_stack_mib <= t["idle_stack_mib"],
        ),
        _target(
            "loaded_stack_mib",
            f"whole stack RSS @ {plan.top} users (max)",
            "≤ 1.3 GiB",
            f"{results.loaded_stack_mib:.0f} MiB",
            results.loaded_stack_mib <= t["loaded_stack_mib"],
        ),
        _target(
            "service_idle_mib",
            "every Python service RSS, idle",
            f"≤ {t['service_idle_mib']:.0f} MiB",
            f"{python_idle.get(heaviest, 0):.0f} MiB ({heaviest})",
            bool(python_idle) and max(python_idle.values()) <= t["service_idle_mib"],
        ),
        *[
            Target(**v)
            for v in validation_bench.targets(results.validation, lambda *a: asdict(_target(*a)))
        ],
        _target(
            "startup_s",
            "up → all ready (collector built)",
            f"≤ {t['startup_s']:.0f} s",
            f"{results.startup_s:.1f} s",
            results.startup_s <= t["startup_s"],
        ),
    ]
    if results.ui is not None:
        results.targets += [Target(**v) for v in bench_ui.targets(results.ui)]


def _target(key: str, what: str, target: str, measured: Any, ok: bool) -> Target:
    return Target(
        key=key,
        what=what,
        target=target,
        target_value=TARGETS.get(key, 0),
        measured=measured,
        ok=bool(ok),
    )
