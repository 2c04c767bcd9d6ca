"""The report: PNG plots, the markdown (docs/benchmarks.md) and the JSON beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workshop import bench_budget_doc, bench_ui, validation_bench
from workshop.bench.plan import BEFORE_FIX_ENV, CHAIN_HOPS, FIX, PYTHON_SERVICES, TARGETS
from workshop.bench.results import BenchResults, ProcessStats, RunResult
from workshop.bench_findings import findings

# What the telemetry figures pay for (issue 19 asks that a dropped or merged span be named).
TRACE_CONTENTS = (
    "**What a trace keeps.** No span is dropped or merged to save CPU: one trace crosses all "
    "eight services, with a SERVER span per hop, a CLIENT span per call between services, a "
    "span per Redis command or pipeline and per SQLite statement, the worker's CONSUMER span "
    "a child of the PRODUCER span across the Redis Stream, `fault.injected` events and the "
    "`workshop.attendee` attribute. Since issue 19 the kit writes some of them itself: the "
    "CLIENT spans come from `stack.common.http` (scope `stack.http`) and the Redis spans from "
    "`stack.common.redis_tracing` (scope `stack.redis`) instead of the "
    "opentelemetry-instrumentation-aiohttp-client and -redis packages, with the same names, "
    "attributes, status and error rules (tests compare the two span for span) for about half "
    "the CPU; a CLIENT span now also covers reading the response body. The calls themselves "
    "go over the kit's HTTP/1.1 client (`stack.common.http_wire`: keep-alive connections, "
    "httptools for the answer) instead of aiohttp's, for about a third of its CPU per call; "
    "the spans are the same but for the `error.type` of a peer that cannot be reached, which "
    "names the client's exception (`ConnectError` instead of `ClientConnectorError`). The OTLP "
    "encoder (`stack.common.otlp_wire`) writes the SDK's bytes (tested byte for byte) for a "
    "fifth of the SDK encoder's CPU. Every span is started and ended by the SDK's tracer "
    "along a shorter path (`stack.common.lean_trace`: the default sampler's decision made "
    "inline, attributes in a plain dict under the SDK's rules, one context manager instead of "
    "two generators; tested to export the SDK's bytes) for about 40 % of its CPU a span, "
    "and the baggage entries a learner filters by become its attributes through the kit's "
    "processor (`stack.common.baggage_spans`: opentelemetry-processor-baggage's attributes in "
    "its order, tested, for half its CPU a span). "
    "The SERVER spans are FastAPI's, opened by the kit outside the app's middleware "
    "(`stack.common.server_spans`: the propagation headers and Host read straight from the "
    "request, one context attached, FastAPI's own routing and exception records reused; "
    "tests compare the two span for span and log for log): validation-service's POST "
    "/validate, in-process, costs 104 µs instead of 128. `CLIENT_SPANS=packages`, "
    "`HTTP_CLIENT=aiohttp`, `OTLP_SPAN_ENCODER=sdk`, `SPAN_PATH=sdk` and "
    "`SERVER_SPANS=fastapi` put the old way back (the budget bench's baseline arm); the "
    "services' image no longer installs the packages."
)


def write_plots(results: BenchResults, plot_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    full, cheap = results.runs.full, results.runs.cheap
    chain_r = results.chain
    files = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r.users for r in full], [r.rps for r in full], "o-", label="full flow: questions/s")
    ax.plot(
        [r.users for r in full],
        [r.total_rps for r in full],
        "o--",
        label="full flow: gateway requests/s (asks + polls)",
    )
    ax.plot(
        [r.users for r in cheap],
        [r.rps for r in cheap],
        "s-",
        label="cheap: GET /health req/s",
    )
    ax.plot(
        [chain_r.users],
        [chain_r.rps],
        "r*",
        markersize=12,
        label=f"ceiling: {CHAIN_HOPS}-hop bare chain req/s",
    )
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("per second")
    ax.set_title("Throughput vs users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["throughput"] = "throughput.png"
    fig.savefig(plot_dir / files["throughput"], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(
        [r.users for r in full],
        [r.p95_ms for r in full],
        "o-",
        label="full flow: POST /api/queries p95",
    )
    ax.plot(
        [r.users for r in full],
        [r.job_p95_ms or 0.0 for r in full],  # always set on the full flow
        "o--",
        label="full flow: job submit→done p95",
    )
    ax.plot(
        [r.users for r in cheap],
        [r.p95_ms for r in cheap],
        "s-",
        label="cheap: GET /health p95",
    )
    for key, style, whose in (("p95_ms", ":", ""), ("p95_ms_19", "--", ", issue 19")):
        ms = TARGETS[key]
        ax.axhline(ms, color="grey", linestyle=style, label=f"p95 target ({ms:.0f} ms{whose})")
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("ms")
    ax.set_title("p95 latency vs users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["p95"] = "p95.png"
    fig.savefig(plot_dir / files["p95"], dpi=100)
    plt.close(fig)

    idle, loaded = results.idle_rss_mib, results.loaded_rss_mib
    names = [n for n in idle if n != "locust"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], [idle[n] for n in names], height=0.4, label="idle")
    ax.barh(
        [y + 0.2 for y in ys],
        [loaded.get(n, 0) for n in names],
        height=0.4,
        label=f"{results.plan.levels[-1]} users (max)",
    )
    ax.axvline(
        TARGETS["service_idle_mib"], color="grey", linestyle=":", label="100 MiB per service (idle)"
    )
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("RSS (MiB)")
    ax.set_title("RSS per process, idle vs loaded")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["rss"] = "rss.png"
    fig.savefig(plot_dir / files["rss"], dpi=100)
    plt.close(fig)
    return files


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _locust_cpu(r: RunResult) -> float | None:
    p = r.processes.get("locust")
    return p.cpu_pct if p else None


def _cells(p: ProcessStats | None) -> str:
    """A process's RSS mean, RSS max, CPU s, CPU % (– when it was not sampled)."""
    if p is None:
        return "– | – | – | –"
    return f"{fmt(p.rss_mean_mib, 0)} | {fmt(p.rss_max_mib, 0)} | {fmt(p.cpu_s)} | {fmt(p.cpu_pct)}"


def render_markdown(results: BenchResults, plots: dict[str, str], plot_rel: str) -> str:
    m, plan = results.meta, results.plan
    mid, top = plan.middle, plan.top
    L: list[str] = ["# Benchmarks", ""]
    if m.short:
        L += [
            "> **Short mode** (`--short`): a check that the benchmark runs, not a measurement.",
            "",
        ]
    L += [
        "Produced by `workshop bench` (`make bench`). Every figure below comes from one run on "
        "one machine, except the budget section (`--budget`), a run of its own that names its "
        "machine; rerun it on a quiet machine before comparing.",
        "",
        "| date | cores | memory | CPU | Python | commit | load avg before (1/5/15 min) |",
        "|---|---|---|---|---|---|---|",
        f"| {m.date} | {m.cores} | {m.memory_gib} GiB | {m.cpu_model} | {m.python} "
        f"| `{m.commit}` | {' / '.join(str(x) for x in m.load_before)} |",
        "",
        f"Levels: {', '.join(str(u) for u in plan.levels)} users × {plan.duration:.0f} s "
        "each, closed loop (no think time), Locust headless in its own process on the "
        "same machine. Native stack: collector on (file exporter unless CX_PRIVATE_KEY is set), "
        "nginx off, a fresh data dir.",
        "",
        "## Targets",
        "",
        "| | target | measured | |",
        "|---|---|---|---|",
    ]
    for t in results.targets:
        L.append(f"| {t.what} | {t.target} | {fmt(t.measured, 3)} | {'✅' if t.ok else '❌'} |")
    L += ["", *findings(results.to_dict(), PYTHON_SERVICES)]
    if results.validation is not None:
        L += validation_bench.markdown(results.validation)
    L += [
        "## Full flow (ask → poll every 20 ms → done)",
        "",
        "| users | questions/s | gateway req/s | POST p50 | p95 | p99 (ms) | poll p95 (ms) "
        "| jobs | job p50 | job p95 (ms) | error ratio | stack CPU % | stack RSS max (MiB) "
        "| Locust CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.runs.full:
        L.append(
            f"| {r.users} | {fmt(r.rps)} | {fmt(r.total_rps)} | {fmt(r.p50_ms, 0)} "
            f"| {fmt(r.p95_ms, 0)} | {fmt(r.p99_ms, 0)} | {fmt(r.poll_p95_ms, 0)} "
            f"| {r.jobs} "
            f"| {fmt(r.job_p50_ms, 0)} | {fmt(r.job_p95_ms, 0)} | {fmt(r.error_ratio, 4)} "
            f"| {fmt(r.stack_cpu_pct)} | {fmt(r.stack_rss_max_mib, 0)} "
            f"| {fmt(_locust_cpu(r))} |"
        )
    L += [
        "",
        "## Cheap endpoint (gateway GET /health: no tracing, no fan-out)",
        "",
        "| users | req/s | p50 | p95 | p99 (ms) | error ratio | stack CPU % | Locust CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results.runs.cheap:
        L.append(
            f"| {r.users} | {fmt(r.rps)} | {fmt(r.p50_ms, 0)} | {fmt(r.p95_ms, 0)} "
            f"| {fmt(r.p99_ms, 0)} | {fmt(r.error_ratio, 4)} | {fmt(r.stack_cpu_pct)} "
            f"| {fmt(_locust_cpu(r))} |"
        )
    on, off, ch = results.full_otel_on, results.full_otel_off, results.chain
    before = results.full_before_fix
    ratios = results.ratios
    L += [
        "",
        f"## The profiling fix, before and after (at {mid} users, this run)",
        "",
        f"The fix: {FIX}. The 'before' stack runs the old path "
        f"(`{' '.join(f'{k}={v}' for k, v in BEFORE_FIX_ENV.items())}`).",
        "",
        comparison_method(results),
        "",
        "| run | questions/s | gateway req/s | p50 | p95 | poll p95 | job p95 (ms) | errors "
        "| stack CPU % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (("after the fix", on), ("before the fix", before)):
        L.append(
            f"| {label} | {fmt(r.rps)} | {fmt(r.total_rps)} | {fmt(r.p50_ms, 0)} "
            f"| {fmt(r.p95_ms, 0)} | {fmt(r.poll_p95_ms, 0)} | {fmt(r.job_p95_ms, 0)} "
            f"| {r.failures} | {fmt(r.stack_cpu_pct)} |"
        )
    L += [
        "",
        f"- after ÷ before: **{ratios.fix_after_vs_before}** (questions/s); round by round: "
        f"{_rounds(results, 'fix_after_vs_before')}.",
        "",
        f"## Telemetry overhead and the ceiling (at {mid} users)",
        "",
        "| run | questions or req/s | p50 | p95 | p99 (ms) | job p95 (ms) | errors | stack CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (
        ("full flow, telemetry on", on),
        ("full flow, OTEL_SDK_DISABLED=true", off),
        (f"ceiling: {CHAIN_HOPS}-hop bare uvicorn chain", ch),
    ):
        L.append(
            f"| {label} | {fmt(r.rps)} | {fmt(r.p50_ms, 0)} | {fmt(r.p95_ms, 0)} "
            f"| {fmt(r.p99_ms, 0)} | {fmt(r.job_p95_ms, 0)} | {r.failures} "
            f"| {fmt(r.stack_cpu_pct)} |"
        )
    L += [
        "",
        f"- telemetry on ÷ off: **{ratios.telemetry_on_vs_off}**; round by round: "
        f"{_rounds(results, 'telemetry_on_vs_off')} (the same interleaved slices as above).",
        f"- full flow ÷ ceiling: **{ratios.full_vs_chain}** (questions/s ÷ chain req/s); "
        "counting every gateway request (asks + polls): "
        f"{ratios.full_gateway_requests_vs_chain}.",
        f"- The ceiling is {CHAIN_HOPS} processes in a row (`workshop/bench_chain.py`: bare ASGI, "
        "one shared aiohttp session, uvloop + httptools like the services): the same five HTTP "
        "exchanges as the ask's synchronous path — client→api-gateway, gateway→query-service, "
        "query-service→external-api-service, gateway→validation-service, gateway→queue-service — "
        "without FastAPI, pydantic, Redis, telemetry or the asynchronous job.",
        "",
        TRACE_CONTENTS,
        "",
        "## Footprint per process",
        "",
        f"Startup (`launcher.up` called → every service ready, collector already built): "
        f"**{results.startup_s:.1f} s** (telemetry off: {results.startup_otel_off_s:.1f} s).",
        "",
        f"| process | idle RSS (MiB) | RSS mean @ {top} | RSS max @ {top} (MiB) | CPU s @ {top} "
        f"| CPU % @ {top} |",
        "|---|---|---|---|---|---|",
    ]
    top_run = results.run_at(top)
    for name, idle in results.idle_rss_mib.items():
        L.append(f"| {name} | {fmt(idle, 0)} | {_cells(top_run.processes.get(name))} |")
    L += [
        f"| **whole stack** | **{results.idle_stack_mib:.0f}** | | "
        f"**{results.loaded_stack_mib:.0f}** (max of the sum) | "
        f"| {top_run.stack_cpu_pct:.1f} |",
        "| locust (load generator, not in the total) | – | "
        f"{_cells(top_run.processes.get('locust'))} |",
        "",
        "RSS counts shared pages once per process; CPU % is CPU seconds over the run's length "
        "(100 % = one core). Sampled with psutil once a second, each program with its children.",
        "",
    ]
    if results.profile is not None:
        prof = results.profile
        name = Path(prof.file).name
        L += [
            "## Profile",
            "",
            f"py-spy on **{prof.service}** (the Python service with the most CPU at {top} "
            f"users), in an extra run: [`{name}`]({plot_rel}/{name}).",
            "",
        ]
    L += ["## Plots", ""]
    for key, title in (
        ("throughput", "Throughput vs users"),
        ("p95", "p95 vs users"),
        ("rss", "RSS per process, idle vs loaded"),
    ):
        L.append(f"![{title}]({plot_rel}/{plots[key]})")
        L.append("")
    L += bench_ui.markdown(results.ui)
    L += [
        "## Method",
        "",
        "- Every Locust run is a separate `locust --headless` subprocess "
        "(`workshop/bench_locustfile.py`, FastHttpUser, `wait_time = 0`); figures come from its "
        "CSV stats. Percentiles are Locust's (rounded to its histogram buckets).",
        "- Each question is a corpus line plus a reference the generator ignores, so every ask "
        "misses the query cache and reaches the LLM stand-in.",
        "- Locust shares the machine's cores with the stack: its own CPU is in the tables.",
        f"- Raw figures: [`{Path(results.json_file or 'benchmarks.json').name}`]"
        f"({Path(results.json_file or 'benchmarks.json').name}).",
        "",
    ]
    return "\n".join(L)


def comparison_method(results: BenchResults) -> str:
    plan = results.plan
    rounds, per = plan.rounds, plan.slice
    return (
        f"Method: three stacks run side by side — as built, with the fix undone, with "
        f"telemetry off — each started fresh and warmed up. Locust then alternates between "
        f"them: {rounds} rounds of {per:.0f} s per stack, the order rotated each round, so a "
        "change in the machine's speed during the run hits every stack alike. Throughput and "
        "CPU are the mean of a stack's slices, each latency percentile the median of its "
        "slices' percentiles."
    )


def _rounds(results: BenchResults, key: str) -> str:
    return ", ".join(f"{v:.3f}" for v in getattr(results.ratio_rounds, key))


def write_report(results: BenchResults, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_dir = out.parent / "benchmarks"
    plots = write_plots(results, plot_dir)
    results.plots = {k: str(plot_dir / v) for k, v in plots.items()}
    json_file = out.with_suffix(".json")
    results.json_file = str(json_file)
    json_file.write_text(json.dumps(results.to_dict(), indent=2, ensure_ascii=False) + "\n")
    report = render_markdown(results, plots, "benchmarks")
    # `--budget` owns its section: a full run keeps the last one measured.
    kept = bench_budget_doc.section(out.read_text()) if out.exists() else None
    out.write_text(bench_budget_doc.splice(report, kept) if kept else report)
