"""`workshop bench`: the reproducible benchmark → docs/benchmarks.md (+ PNG plots, + JSON).

One run, one machine, in this order:

1. the native stack on its own ports (collector on, nginx off) in a fresh data dir; the
   startup time is measured from the `launcher.up` call until every service is ready;
2. a warm-up, then the idle RSS of every process;
3. Locust, headless, as a subprocess (never imported here: gevent patches the interpreter), at
   each concurrency level: (a) the full flow — ask, poll every 20 ms until done — and (b) the
   cheap endpoint (gateway GET /health); psutil samples every supervisord program, and the
   Locust process separately, once a second;
4. the full flow at the middle level on three stacks running side by side — as built; with
   the profiling fix undone (GATEWAY_POLL_VIA=services) for the fix's before/after ratio; with
   OTEL_SDK_DISABLED=true for the telemetry overhead ratio — in interleaved slices, the order
   rotated each round, so noise from the machine hits all three alike;
5. the ceiling: a chain of bare uvicorn processes (workshop/bench_chain.py) with as many HTTP
   exchanges as the full flow's synchronous path, driven with the same Locust settings.

`--short` runs the same code path at 2 and 4 users for a few seconds: a check that the
command works, not a benchmark. `--profile auto` adds one more full-flow run at the top level
with py-spy attached to the Python service that used the most CPU and writes its profile
(text) next to the plots.

Ports default to a base of 23000 (gateway 23010, redis 23379, OTLP 23317/23318, collector
health 23133, chain 23030…); WORKSHOP_PORT_BASE, REDIS_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT
and COLLECTOR_HEALTH_PORT move them, as for `workshop up`.

The package, by job: plan (levels, ports, targets), sampler (psutil), locust (one Locust run),
stack (the stacks' processes, the chain), profile (py-spy), host (the machine), results (the
typed results and their JSON), run (the run, in order, and the derived figures), report (plots,
markdown, JSON), cli (the command). The names below are its public surface.
"""

from __future__ import annotations

from workshop.bench.cli import _budget, app, bench, console
from workshop.bench.host import machine
from workshop.bench.locust import FLOWS, LOCUSTFILE, locust_exe, parse_stats, run_locust
from workshop.bench.plan import (
    BEFORE_FIX_ENV,
    CHAIN_HOPS,
    FIX,
    PYTHON_SERVICES,
    TARGETS,
    Plan,
    bench_config,
    chain_ports,
    make_plan,
)
from workshop.bench.profile import package_shares, pyspy_exe, run_profile, summarise_pyspy
from workshop.bench.report import (
    comparison_method,
    fmt,
    render_markdown,
    write_plots,
    write_report,
)
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
from workshop.bench.run import derive, merge_slices, run_bench
from workshop.bench.sampler import MIB, Sampler
from workshop.bench.stack import chain, fresh_dir, idle_rss, stack_pids

__all__ = [
    "BEFORE_FIX_ENV",
    "CHAIN_HOPS",
    "FIX",
    "FLOWS",
    "LOCUSTFILE",
    "MIB",
    "PYTHON_SERVICES",
    "TARGETS",
    "BenchResults",
    "Meta",
    "Plan",
    "ProcessStats",
    "Profile",
    "RatioRounds",
    "Ratios",
    "RunResult",
    "Runs",
    "Sampler",
    "Target",
    "_budget",
    "app",
    "bench",
    "bench_config",
    "chain",
    "chain_ports",
    "comparison_method",
    "console",
    "derive",
    "fmt",
    "fresh_dir",
    "idle_rss",
    "locust_exe",
    "machine",
    "make_plan",
    "merge_slices",
    "package_shares",
    "parse_stats",
    "pyspy_exe",
    "render_markdown",
    "run_bench",
    "run_locust",
    "run_profile",
    "stack_pids",
    "summarise_pyspy",
    "write_plots",
    "write_report",
]
