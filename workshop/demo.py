"""``workshop demo [--fast]``: the guided tour.

Starts the native stack if it is not running (and leaves it running), then runs the tour spec
``labs/specs/tours/demo.yaml`` with the labs' own timeline code (one traffic run, the fault
steps injected and cleared at their offsets) and narrates its four phases — baseline →
latency fault → error fault → recovery — with a live view, a per-phase summary, the slowest
trace's waterfall from local telemetry, and where to look next. Offline by default; every
fault the tour injects is cleared on the way out (Ctrl-C included).

The stack is found with ``NativeConfig.from_env()``: WORKSHOP_DATA_DIR, WORKSHOP_PORT_BASE,
REDIS_PORT and the OTLP ports select which stack (tests point it at their own).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from labs.runtime import Lab, links
from labs.runtime.spec import TourPhase, TourSpec, load_tour
from labs.runtime.state import FaultRecord
from labs.runtime.traffic import Stats, TrafficRun
from labs.runtime.views import live_view
from stack.common.settings import ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError, Supervisor

app = typer.Typer(help="The guided tour: baseline → latency → errors → recovery.")
console = Console()
ATTENDEE = "demo"


@dataclass
class PhaseResult:
    phase: TourPhase
    stats: Stats
    start: float  # epoch seconds
    end: float


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


def _actual_windows(
    windows: list[tuple[TourPhase, float, float]], t0: float, faults: list[FaultRecord]
) -> list[tuple[TourPhase, float, float]]:
    """The phases in epoch seconds: a fault phase lasts while its fault was really on, and
    the phases around it give way, so no request is counted in the wrong phase."""
    recs = {f.step: f for f in faults if f.start}
    out: list[tuple[TourPhase, float, float]] = []
    for i, (phase, start, end) in enumerate(windows):
        lo, hi = t0 + start, t0 + end
        rec = recs.get(phase.fault) if phase.fault is not None else None
        if rec and rec.start:
            lo, hi = rec.start, rec.end or hi
        else:
            if out:
                lo = max(lo, out[-1][2])
            after = windows[i + 1][0].fault if i + 1 < len(windows) else None
            nxt = recs.get(after) if after is not None else None
            if nxt and nxt.start:
                hi = min(hi, nxt.start)
        out.append((phase, lo, hi))
    return out


def _run_tour(lab: Lab, tour: TourSpec, users: int | None) -> list[PhaseResult]:
    """Traffic and the fault timeline (``Lab.run``), narrated phase by phase as it goes."""
    windows = tour.windows(lab.short_mode)
    run: TrafficRun = lab.run(users=users)
    t0 = run.started_at
    progress = Progress(
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    bars = [progress.add_task(p.key, total=end - start) for p, start, end in windows]
    told, announced = -1, set()
    with live_view(console, refresh_per_second=4) as live:
        while True:
            running = run.running
            elapsed = time.time() - t0
            now = sum(1 for _p, start, _e in windows if elapsed >= start) - 1
            while told < now:
                told += 1
                phase = windows[told][0]
                live.console.rule(f"[bold]{phase.title}")
                live.console.print(phase.story)
            for rec in lab.state.faults:
                if rec.id and rec.id not in announced:
                    announced.add(rec.id)
                    live.console.print(f"[red]⚡ injected[/] {rec.id} on {rec.target}")
            for bar, (_p, start, end) in zip(bars, windows, strict=True):
                progress.update(bar, completed=min(max(elapsed - start, 0.0), end - start))
            phase, lo, hi = _actual_windows(windows, t0, lab.state.faults)[max(told, 0)]
            current = run.stats(lo, min(time.time(), hi))
            live.update(Group(progress, _stats_table([(phase.key, current)], "live")))
            if not running:
                break
            time.sleep(0.25)
    lab.wait()
    if run.error:
        console.print(f"[red]traffic error:[/] {run.error}")
    results = []
    for phase, lo, hi in _actual_windows(windows, t0, lab.state.faults):
        results.append(PhaseResult(phase, run.stats(lo, hi), lo, hi))
    return results


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
    console.print(waterfall_text(trace_spans(spans, slowest.trace_id), max_width=console.width))
    console.print(f"`workshop traces show {slowest.trace_id[:12]}` shows it again.")
    t0 = slowest.start_ns / 1e9
    return slowest.trace_id, t0, t0 + slowest.duration_ms / 1000


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    fast: Annotated[bool, typer.Option("--fast", help="the tour's short timings (CI)")] = False,
    users: Annotated[
        int | None, typer.Option(min=1, max=20, help="concurrent simulated users")
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="also write the per-phase figures as JSON")
    ] = None,
) -> None:
    """Start the stack if needed and run the narrated tour."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = NativeConfig.from_env()
    tour = load_tour("demo")
    console.print(
        Panel.fit(
            f"{tour.summary}\nOur traffic is attendee [bold]{ATTENDEE}[/]; "
            "every fault is scoped to it and cleared at the end.",
            title=tour.title,
        )
    )
    try:
        _ensure_stack(cfg)
    except LaunchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    lab = Lab(
        tour,
        gateway_url=cfg.url(ServiceName.GATEWAY),
        telemetry_dir=cfg.telemetry_dir,
        attendee=ATTENDEE,
        short_mode=fast,
    )
    results: list[PhaseResult] = []
    try:
        results = _run_tour(lab, tour, users)
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted — clearing the tour's faults[/]")
        raise typer.Exit(130) from None
    finally:
        lab.cleanup()
    console.rule("[bold]Summary")
    console.print(_stats_table([(r.phase.title, r.stats) for r in results], "per phase"))
    if summary_json:
        summary_json.write_text(
            json.dumps(
                {
                    r.phase.key: {
                        "requests": r.stats.requests,
                        "errors": r.stats.errors,
                        "error_ratio": r.stats.error_ratio,
                        "p50_ms": r.stats.p50_ms,
                        "p95_ms": r.stats.p95_ms,
                        "rps": r.stats.rps,
                        "start": r.start,
                        "end": r.end,
                    }
                    for r in results
                },
                indent=2,
            )
        )
    latency = next((r for r in results if r.phase.key == "latency"), None)
    slow = _slowest_trace(cfg, latency.start, latency.end) if latency else None
    console.rule("[bold]Where to look next")
    _where_to_look(cfg, results, slow)
    console.print("The stack is still running: `workshop status`; stop it with `workshop down`.")


def _where_to_look(
    cfg: NativeConfig, results: list[PhaseResult], slow: tuple[str, float, float] | None
) -> None:
    """Per-attendee Coralogix links for the tour's exact window, the slowest trace, the host."""
    start = min((r.start for r in results), default=None)
    end = max((r.end for r in results), default=None)
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
        # A grid keeps each command on one line and wraps its description beside it.
        hints = Table.grid(padding=(0, 3))
        hints.add_column(no_wrap=True)
        hints.add_column()
        for command, what in (
            (
                f"workshop traces --attendee {ATTENDEE} --min-ms 300",
                "slow traces (latency phase)",
            ),
            (f"workshop traces --attendee {ATTENDEE} --errors", "failed traces (error phase)"),
            ("workshop traces show <trace id>", "one waterfall"),
        ):
            hints.add_row(f"  {command}", what)
        console.print(hints)
        console.print("Set CX_PRIVATE_KEY (and restart) to send the same telemetry to Coralogix.")
