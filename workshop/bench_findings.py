"""Why a missed benchmark target is missed: the bound, computed from the run's own figures.

Each explanation is written only when its target is missed in this run, and every number in
it comes from the results (CPU seconds per process, throughput, the py-spy profile), so the
report cannot claim a bound the run did not show.
"""

from __future__ import annotations

from typing import Any

OTEL_PREFIX = "opentelemetry"


def cpu_ms_per_unit(run: dict[str, Any]) -> float:
    """Stack CPU (every sampled process but Locust) per unit of the run's throughput, in ms."""
    return run["stack_cpu_pct"] * 10 / run["rps"] if run["rps"] else 0.0


def service_cpu_ms(run: dict[str, Any], names: list[str]) -> dict[str, float]:
    """CPU ms per question (or request) of each named process, largest first."""
    if not run["rps"]:
        return {}
    per = {
        n: run["processes"][n]["cpu_pct"] * 10 / run["rps"] for n in names if n in run["processes"]
    }
    return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def _listing(values: dict[str, float], digits: int = 1, top: int = 5) -> str:
    return ", ".join(f"{k} {v:.{digits}f}" for k, v in list(values.items())[:top])


def _heading(t: dict[str, Any]) -> str:
    return f"**{t['what']}: {t['measured']} against {t['target']}.**"


def _missed(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in results["targets"] if not t["ok"]}


def findings(results: dict[str, Any], python_services: list[str]) -> list[str]:
    """Markdown lines: one subsection per missed target (none when every target is met)."""
    missed = _missed(results)
    if not missed:
        return []
    mid_users = results["plan"]["middle"]
    full = {r["users"]: r for r in results["runs"]["full"]}
    mid, chain = full[mid_users], results["chain"]
    cores = results["meta"]["cores"]
    L = ["## Missed targets: by how much, what bounds them, what would move them", ""]

    def cpu_bound(need: float) -> list[str]:
        """The stack's CPU at the middle level, and what `need` questions/s would take."""
        cpq = cpu_ms_per_unit(mid)
        return [
            f"- Bound: CPU. At {mid_users} users the stack used {mid['stack_cpu_pct']:.0f} % "
            f"of the {cores * 100} % this machine has, and one question cost {cpq:.1f} ms of "
            f"CPU across the processes (ms per question: "
            f"{_listing(service_cpu_ms(mid, python_services))}).",
            f"- At {cpq:.1f} ms a question, {cores} cores give at most "
            f"{cores * 1000 / max(cpq, 1e-9):.0f} questions/s; the target is {need:.0f}/s, "
            f"which needs ≤ {cores * 1000 / max(need, 1e-9):.1f} ms of CPU per question.",
        ]

    if t := missed.pop("full_vs_chain", None):
        L += [
            f"**{t['what']}: {t['measured']} against {t['target']}** "
            f"({t['target_value'] / max(t['measured'], 1e-9):.1f}× short).",
            "",
            *cpu_bound(t["target_value"] * chain["rps"]),
            f"- One chain request cost {cpu_ms_per_unit(chain):.2f} ms.",
            "- What would move it: fewer processes on the synchronous path (validation inside "
            "the gateway removes a hop), a leaner per-hop stack (the services' JSON routes "
            "already skip FastAPI's dependency layer, `stack.common.json_route`; Starlette's "
            "middleware chain and the server remain), sampling (below), more cores.",
            "",
        ]
    if t := missed.pop("questions_per_s_19", None):
        L += [
            f"**{t['what']}: {t['measured']} against {t['target']}** "
            f"({t['target_value'] / max(mid['rps'], 1e-9):.1f}× short).",
            "",
            *cpu_bound(t["target_value"]),
            "- What would move it: fewer wakeups per question, that is fewer processes and "
            "round trips on a question's path (the budget section below measures the eight "
            "services moved into one process), and less code per hop.",
            "",
        ]
    for key in ("p95_ms", "p95_ms_19", "job_p95_ms"):
        if t := missed.pop(key, None):
            levels = ", ".join(
                f"{u} users → {r['job_p95_ms' if key == 'job_p95_ms' else 'p95_ms']:.0f} ms"
                for u, r in sorted(full.items())
            )
            L += [
                _heading(t),
                "",
                f"- Bound: the closed loop on saturated CPU ({mid['stack_cpu_pct']:.0f} % of "
                f"{cores * 100} %). {mid_users} users with no think time keep {mid_users} "
                f"questions in flight; by Little's law each takes users ÷ throughput = "
                f"{mid_users * 1000 / max(mid['rps'], 1e-9):.0f} ms on average (ask and "
                f"polls), so latency grows with users once throughput stops: {levels}.",
                "- What would move it: less CPU per question (above) — throughput is the "
                "only lever in a closed loop.",
                "",
            ]
    # Issue 19's telemetry bar is looser than the original one: one explanation covers both.
    strict, loose = missed.pop("telemetry_ratio", None), missed.pop("telemetry_ratio_19", None)
    if both := [t for t in (strict, loose) if t]:
        on, off = results["full_otel_on"], results["full_otel_off"]
        on_c, off_c = cpu_ms_per_unit(on), cpu_ms_per_unit(off)
        L += [
            " ".join(_heading(t) for t in both),  # every missed bar named, one explanation
            "",
            f"- Bound: CPU spent on telemetry. One question cost {on_c:.1f} ms of stack CPU "
            f"with telemetry and {off_c:.1f} ms without: {on_c - off_c:.1f} ms "
            f"({100 * (on_c - off_c) / max(on_c, 1e-9):.0f} %) is creating, propagating, "
            "batching and exporting spans, logs and metrics (the collector's own share is in "
            "the footprint table).",
        ]
        prof = results.get("profile")
        if prof and prof.get("packages"):
            otel = {k: v for k, v in prof["packages"].items() if k.startswith(OTEL_PREFIX)}
            L.append(
                f"- Profile evidence: in py-spy's samples of {prof['service']} "
                f"(full flow at the top level), OpenTelemetry packages take "
                f"{sum(otel.values()):.0f} % ({_listing(otel)} %)."
            )
        L += [
            "- What would move it: head sampling (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`) "
            "skips span recording and export for unsampled traces, but not context "
            "propagation; fewer spans per question (every Redis command is a span, and a "
            "learner needs them); the SDK's per-span work is pure Python: the kit already "
            "starts and ends spans along a shorter path through it (`stack.common.lean_trace`) "
            "and writes their bytes itself (`stack.common.otlp_wire`), which leaves the span "
            "objects, the context switches in and out of each span, baggage and the export "
            "thread's HTTP.",
            "",
        ]
    if t := missed.pop("service_idle_mib", None):
        L += _rss_finding(t, results["idle_rss_mib"], python_services)
    for t in missed.values():
        L += [_heading(t), ""]
    return L


def _rss_finding(
    t: dict[str, Any], idle_rss: dict[str, float], python_services: list[str]
) -> list[str]:
    """What a service idles at above the lightest one is what it alone imports and holds."""
    idle = {n: idle_rss[n] for n in python_services if n in idle_rss}
    if not idle:
        return [_heading(t), ""]
    lightest = min(idle, key=lambda n: idle[n])
    above = {n: idle[n] - idle[lightest] for n in sorted(idle, key=lambda n: -idle[n])}
    return [
        _heading(t),
        "",
        f"- Bound: what each service imports and keeps. The lightest Python process, "
        f"{lightest}, idles at {idle[lightest]:.0f} MiB; the others above it (MiB): "
        f"{_listing(above, 0)}.",
        "- What would move it: loading a module only in the service that uses it, and only "
        "when first needed; `python -X importtime -m stack.run SERVICE` lists the imports by "
        "cost.",
        "",
    ]
