"""``workshop demo [--fast]``: the guided tour.

Starts the native stack if it is not running (and leaves it running), then four narrated
phases — baseline → latency fault → error fault → recovery — each with a live view, a
per-phase summary, the slowest trace's waterfall from local telemetry, and where to look next.
Offline by default; every fault it injects is cleared on the way out (Ctrl-C included).

The stack is found with ``NativeConfig.from_env()``: WORKSHOP_DATA_DIR, WORKSHOP_PORT_BASE,
REDIS_PORT and the OTLP ports select which stack (tests point it at their own).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from labs.runtime import links, traffic
from labs.runtime.traffic import Stats
from stack.client import ApiError, Gateway, admin_token
from stack.common.settings import ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError, Supervisor

app = typer.Typer(help="The guided tour: baseline → latency → errors → recovery.")
console = Console()
ATTENDEE = "demo"


@dataclass
class Phase:
    key: str
    title: str
    story: str
    fault: dict[str, Any] | None = None


PHASES = [
    Phase(
        "baseline",
        "Baseline",
        "Nothing is wrong. Note the p95 and the error ratio: this is normal.",
    ),
    Phase(
        "latency",
        "Latency fault",
        "validation-service now adds 400 ms to every request. The gateway waits for it.",
        {"kind": "latency", "target": "validation-service", "params": {"ms": 400}},
    ),
    Phase(
        "errors",
        "Error fault",
        "query-service answers 503 for half of the requests; the gateway answers 502.",
        {"kind": "error", "target": "query-service", "params": {"status": 503}, "probability": 0.5},
    ),
    Phase("recovery", "Recovery", "Faults cleared. Latency and errors return to the baseline."),
]


def _stack_running(cfg: NativeConfig) -> bool:
    try:
        return Supervisor(cfg).running()
    except Exception:
        return False


def _ensure_stack(cfg: NativeConfig) -> bool:
    """Start the stack if needed; True if this call started it."""
    if _stack_running(cfg):
        console.print(f"[green]✓[/] the stack is running ({cfg.url(ServiceName.GATEWAY)})")
        return False
    from stack.native.collector import collector_binary

    with_collector = collector_binary().exists()
    if not with_collector:
        console.print(
            "[yellow]the collector is not built (`make collector`): no local traces this time[/]"
        )
    with console.status("starting the stack…") as status:
        result = launcher.up(
            cfg, collector=with_collector, progress=lambda m: status.update(m + "…")
        )
    console.print(f"[green]✓[/] the stack is up ({result.seconds:.0f} s)")
    return True


def _stats_table(rows: list[tuple[str, Stats]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("phase")
    for col in ("requests", "errors", "error ratio", "p50 ms", "p95 ms", "req/s"):
        table.add_column(col, justify="right")
    for name, s in rows:
        err_style = "red" if s.error_ratio > 0.05 else ""
        table.add_row(
            name,
            str(s.requests),
            str(s.errors),
            f"[{err_style}]{s.error_ratio:.1%}[/]" if err_style else f"{s.error_ratio:.1%}",
            "–" if s.p50_ms is None else f"{s.p50_ms:.0f}",
            "–" if s.p95_ms is None else f"{s.p95_ms:.0f}",
            f"{s.rps:.1f}",
        )
    return table


def _run_phase(
    gw: Gateway, base_url: str, phase: Phase, seconds: float, users: int, active: list[str]
) -> tuple[Stats, float, float]:
    console.rule(f"[bold]{phase.title}")
    console.print(phase.story)
    if phase.fault:
        fault = gw.add_fault(ttl_seconds=int(seconds) + 60, **phase.fault)
        active.append(fault["id"])
        console.print(f"[red]⚡ injected[/] {fault['id']} on {fault['target']}")
    run = traffic.start(base_url, users=users, duration_s=seconds, attendees=[ATTENDEE])
    progress = Progress(
        TextColumn(f"[bold]{phase.key}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    task = progress.add_task(phase.key, total=seconds)
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while run.running:
                progress.update(task, completed=min(run.elapsed, seconds))
                live.update(Group(progress, _stats_table([(phase.key, run.stats())], "live")))
                time.sleep(0.25)
            progress.update(task, completed=seconds)
            live.update(Group(progress, _stats_table([(phase.key, run.stats())], "live")))
    finally:
        run.stop()
        run.wait(20)
        while active:
            fid = active.pop()
            with contextlib.suppress(ApiError):
                gw.remove_fault(fid)
    if run.error:
        console.print(f"[red]traffic error:[/] {run.error}")
    return run.stats(), run.started_at, run.ended_at or time.time()


def _slowest_trace(cfg: NativeConfig, start: float, end: float) -> tuple[str, float, float] | None:
    """Draw the slowest request's waterfall; returns (trace id, start s, end s) for links."""
    from labs.telemetry import iter_spans, signal_files, trace_spans, traces, waterfall_text

    if not signal_files(cfg.telemetry_dir, "traces"):
        console.print(
            "[yellow]no local trace files (collector off, or telemetry goes to Coralogix)[/]"
        )
        return None
    lo, hi = int(start * 1e9), int(end * 1e9)
    deadline = time.monotonic() + 20
    while True:
        spans = [s for s in iter_spans(cfg.telemetry_dir) if lo <= s.start_ns <= hi + 5e9]
        found = [
            t
            for t in traces(spans, attendee=ATTENDEE, limit=None)
            if t.root_name == "POST /api/queries"
        ]
        if found and max(s.start_ns for s in spans) >= hi - 2e9:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    if not found:
        console.print("[yellow]no demo traces in local telemetry yet[/]")
        return None
    slowest = max(found, key=lambda t: t.duration_ms)
    console.rule("[bold]The slowest request of the latency phase")
    console.print(waterfall_text(trace_spans(spans, slowest.trace_id)))
    console.print(f"`workshop traces show {slowest.trace_id[:12]}` shows it again.")
    t0 = slowest.start_ns / 1e9
    return slowest.trace_id, t0, t0 + slowest.duration_ms / 1000


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    fast: Annotated[bool, typer.Option("--fast", help="~10 s per phase (CI)")] = False,
    seconds: Annotated[float | None, typer.Option(help="seconds per phase")] = None,
    users: Annotated[int, typer.Option(min=1, max=20, help="concurrent simulated users")] = 3,
    summary_json: Annotated[
        Path | None, typer.Option(help="also write the per-phase figures as JSON")
    ] = None,
) -> None:
    """Start the stack if needed and run the narrated tour."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = NativeConfig.from_env()
    per_phase = seconds or (10.0 if fast else 30.0)
    console.print(
        Panel.fit(
            "The DataPrime Assistant turns plain-language questions into DataPrime queries.\n"
            f"We send traffic as attendee [bold]{ATTENDEE}[/], break things on purpose, and watch.",
            title="DataPrime Workshop — guided tour",
        )
    )
    try:
        _ensure_stack(cfg)
    except LaunchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    token = admin_token(cfg)
    base_url = cfg.url(ServiceName.GATEWAY)
    gw = Gateway(base_url, admin_token=token, attendee=ATTENDEE)
    results: list[tuple[Phase, Stats, float, float]] = []
    active: list[str] = []
    interrupted = False
    try:
        for phase in PHASES:
            stats, start, end = _run_phase(gw, base_url, phase, per_phase, users, active)
            results.append((phase, stats, start, end))
    except KeyboardInterrupt:
        interrupted = True
        console.print("\n[yellow]interrupted — clearing the demo's faults[/]")
    finally:
        for fid in active:
            with contextlib.suppress(ApiError, OSError):
                gw.remove_fault(fid)
    if results:
        console.rule("[bold]Summary")
        console.print(_stats_table([(p.title, s) for p, s, _a, _b in results], "per phase"))
        if summary_json:
            summary_json.write_text(
                json.dumps(
                    {
                        p.key: {
                            "requests": s.requests,
                            "errors": s.errors,
                            "error_ratio": s.error_ratio,
                            "p50_ms": s.p50_ms,
                            "p95_ms": s.p95_ms,
                            "rps": s.rps,
                        }
                        for p, s, _a, _b in results
                    },
                    indent=2,
                )
            )
    if interrupted:
        raise typer.Exit(130)
    latency = next((r for r in results if r[0].key == "latency"), None)
    slow = _slowest_trace(cfg, latency[2], latency[3]) if latency else None
    console.rule("[bold]Where to look next")
    _where_to_look(cfg, results, slow)
    console.print("The stack is still running: `workshop status`; stop it with `workshop down`.")


def _where_to_look(cfg: NativeConfig, results: list, slow: tuple[str, float, float] | None) -> None:
    """Per-attendee Coralogix links for the tour's exact window, the slowest trace, the host."""
    start = min((r[2] for r in results), default=None)
    end = max((r[3] for r in results), default=None)
    info = links.lab_links(
        ATTENDEE,
        start,
        end,
        trace_id=slow[0] if slow else None,
        trace_start=slow[1] if slow else None,
        trace_end=slow[2] if slow else None,
        telemetry_dir=cfg.telemetry_dir,
    )
    if info["hint"]:
        console.print(f"Coralogix: {info['hint']}")
    else:
        if info["spans"]:
            console.print(f"Coralogix Explore, your spans ({ATTENDEE}, this tour's window):")
            console.print(f"  {info['spans']}", soft_wrap=True)
        if info["trace"]:
            console.print(f"Coralogix Explore, the slowest latency-phase trace {slow[0]}:")
            console.print(f"  {info['trace']}", soft_wrap=True)
        console.print("APM → Service Catalog: validation-service latency, query-service errors.")
    console.print(f"Infrastructure: {info['infrastructure']}")
    if not links.coralogix_configured():
        console.print(
            f"  workshop traces --attendee {ATTENDEE} --min-ms 300   slow traces of the latency phase\n"  # noqa: E501
            f"  workshop traces --attendee {ATTENDEE} --errors       failed traces of the error phase\n"  # noqa: E501
            "  workshop traces show <trace id>                  one waterfall\n"
            "Set CX_PRIVATE_KEY (and restart) to send the same telemetry to Coralogix."
        )
