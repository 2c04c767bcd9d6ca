"""The SLO gate: judge the run when Locust quits, print a verdict, set the exit code, write JUnit.

Options: `--slo-p95-ms`, `--slo-p99-ms`, `--slo-fail-ratio`, `--slo-min-rps`, `--slo-endpoint`
(repeatable; see `slo_eval` for the format), `--slo-junit PATH` (default
`reports/<scenario>-slo.xml`), `--slo-scenario NAME` (default: the config file's name).
Exit code 3 = an SLO was breached (see `slo_eval.exit_code`). Runs on the master or a local
runner only: workers have no complete stats.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from locust import events
from locust.runners import WorkerRunner
from locust.stats import StatsEntry

from scenarios import slo_eval

log = logging.getLogger("workshop.slo")


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("workshop SLO gate")
    group.add_argument("--slo-p95-ms", type=float, default=None, help="p95 of all requests (ms)")
    group.add_argument("--slo-p99-ms", type=float, default=None, help="p99 of all requests (ms)")
    group.add_argument(
        "--slo-fail-ratio", type=float, default=None, help="max failed/total ratio, e.g. 0.01"
    )
    group.add_argument("--slo-min-rps", type=float, default=None, help="minimum requests/s")
    parser.add_argument(  # not in the group: only the parser knows include_in_web_ui
        "--slo-endpoint",
        action="append",
        default=None,
        help="per-endpoint SLO: 'METHOD NAME: p95=300 p99=800 fail=0.01 rps=2' (repeatable)",
        include_in_web_ui=False,
    )
    group.add_argument(
        "--slo-junit", default="", help="JUnit XML report (default reports/<scenario>-slo.xml)"
    )
    group.add_argument(
        "--slo-scenario", default="", help="scenario name in reports (default: config file name)"
    )


def scenario_name(opts: Any) -> str:
    if getattr(opts, "slo_scenario", ""):
        return str(opts.slo_scenario)
    config = getattr(opts, "config", None)
    return Path(config).stem if config else "locust"


def _num(opts: Any, name: str) -> float | None:
    value = getattr(opts, name, None)
    return None if value in (None, "") else float(value)


def objectives(opts: Any) -> list[slo_eval.Objective]:
    return slo_eval.global_objectives(
        _num(opts, "slo_p95_ms"),
        _num(opts, "slo_p99_ms"),
        _num(opts, "slo_fail_ratio"),
        _num(opts, "slo_min_rps"),
    ) + slo_eval.parse_endpoint_slos(getattr(opts, "slo_endpoint", None))


def _snapshot(entry: StatsEntry, method: str, name: str) -> slo_eval.EndpointStats:
    has = entry.num_requests > 0
    return slo_eval.EndpointStats(
        method=method,
        name=name,
        requests=entry.num_requests,
        failures=entry.num_failures,
        p50=entry.get_response_time_percentile(0.50) if has else None,
        p95=entry.get_response_time_percentile(0.95) if has else None,
        p99=entry.get_response_time_percentile(0.99) if has else None,
        avg=entry.avg_response_time if has else None,
        rps=entry.total_rps,
    )


def collect(stats: Any) -> tuple[list[slo_eval.EndpointStats], slo_eval.EndpointStats]:
    """Per-endpoint snapshots and the aggregate of every HTTP row (job timings left out)."""
    aggregate = StatsEntry(stats, "all requests", "", use_response_times_cache=False)
    endpoints = []
    for (name, method), entry in stats.entries.items():
        endpoints.append(_snapshot(entry, method, name))
        if method != slo_eval.JOB_METHOD:
            aggregate.extend(entry)
    return endpoints, _snapshot(aggregate, "", slo_eval.AGGREGATE)


def _print_table(verdicts: list[slo_eval.Verdict], suite: str) -> None:
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
    except ImportError:
        print(slo_eval.plain_table(verdicts), file=sys.stderr, flush=True)
        return
    colours = {"PASS": "green", "BREACHED": "bold red", "SKIPPED": "yellow"}
    table = Table(title=f"SLO gate · {suite}")
    for column in ("objective", "actual", "SLO", "verdict"):
        table.add_column(column)
    for objective, actual, limit, status in slo_eval.verdict_rows(verdicts):
        table.add_row(escape(objective), actual, escape(limit), f"[{colours[status]}]{status}[/]")
    Console(stderr=True, width=110).print(table)
    for v in verdicts:
        if v.breached:
            Console(stderr=True, width=200).print(f"[bold red]{escape(v.message)}[/]")


@events.quitting.add_listener
def _gate(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.runner is None:
        return
    opts = environment.parsed_options
    suite = scenario_name(opts)
    try:
        goals = objectives(opts)
    except ValueError as exc:
        log.error("SLO configuration: %s", exc)
        environment.process_exit_code = slo_eval.EXIT_BREACHED
        return
    if not goals:
        return
    endpoints, aggregate = collect(environment.runner.stats)
    verdicts = slo_eval.evaluate(goals, endpoints, aggregate)
    _print_table(verdicts, suite)
    code = slo_eval.exit_code(verdicts)
    if code is not None:
        from locust import log as locust_log

        if code == 0 and locust_log.unhandled_greenlet_exception:
            code = 2  # a crashed greenlet is not something a fail-ratio SLO can excuse
        environment.process_exit_code = code
    path = Path(getattr(opts, "slo_junit", "") or f"reports/{suite}-slo.xml")
    stats = environment.runner.stats
    elapsed = (stats.last_request_timestamp or stats.start_time) - stats.start_time
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(slo_eval.junit_xml(suite, verdicts, max(elapsed, 0.0)), encoding="utf-8")
        log.info("SLO report: %s", path)
    except OSError as exc:
        log.error("could not write %s: %s", path, exc)
    breached = [v.message for v in verdicts if v.breached]
    log.info("SLO gate: %s", "; ".join(breached) if breached else "all objectives met")
