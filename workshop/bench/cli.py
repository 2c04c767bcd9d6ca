"""The `workshop bench` command (and its `--budget` mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from stack.common.settings import REPO_ROOT
from stack.native.supervisor import LaunchError
from workshop import bench_budget
from workshop.bench.plan import PYTHON_SERVICES, make_plan
from workshop.bench.report import fmt
from workshop.bench.run import run_bench

app = typer.Typer(add_completion=False)
console = Console()


@app.callback(invoke_without_command=True)
def bench(
    short: Annotated[
        bool,
        typer.Option("--short", help="2 and 4 users × 5 s: checks the command, measures nothing"),
    ] = False,
    users: Annotated[str | None, typer.Option(help="concurrency levels, e.g. 10,25,50")] = None,
    duration: Annotated[
        float | None, typer.Option(help="seconds per level (default 60; 5 with --short)")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="the report (plots go to benchmarks/ beside it)")
    ] = REPO_ROOT / "docs" / "benchmarks.md",
    data_dir: Annotated[
        Path | None, typer.Option(help="scratch data dir, wiped first (default data/bench)")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            help="py-spy a service in an extra run: a service name or `auto` (the busiest)"
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="only the CPU budget of a burstable VM (t3.small, t3.medium…): idle CPU, CPU "
            "per question, credits over a 3-hour workshop → its section of the report"
        ),
    ] = None,
) -> None:
    """The reproducible benchmark: throughput, latency, footprint, telemetry overhead, ceiling."""
    if budget is not None:
        _budget(budget, out.resolve(), data_dir or REPO_ROOT / "data" / "bench-budget", short)
        return
    plan = make_plan(short, users, duration)
    if profile and profile != "auto" and profile not in PYTHON_SERVICES:
        raise typer.BadParameter(f"--profile: one of auto, {', '.join(PYTHON_SERVICES)}")
    data_dir = data_dir or REPO_ROOT / "data" / "bench"
    out = out.resolve()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        try:
            results = run_bench(plan, out, data_dir, profile, progress)
        except LaunchError as exc:
            progress.stop()
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
    for t in results.targets:
        mark = "[green]✓[/]" if t.ok else "[red]✗[/]"
        console.print(f"{mark} {t.what}: {fmt(t.measured, 3)} (target {t.target})")
    console.print(f"report: {out}")


def _budget(instance: str, out: Path, data_dir: Path, short: bool) -> None:
    if instance not in bench_budget.INSTANCES:
        raise typer.BadParameter(f"--budget: one of {', '.join(bench_budget.INSTANCES)}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console) as progress:  # fmt: skip
        task = progress.add_task("budget", total=None)
        try:
            summary = bench_budget.run(
                instance, out, data_dir, short=short,
                step=lambda m: progress.update(task, description=m),
            )  # fmt: skip
        except LaunchError as exc:
            progress.stop()
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
    for arm, per in summary["instances"].items():
        s = per[instance]
        m = summary["measured"]["arms"][arm]
        console.print(
            f"{arm}: idle {m['idle_total_ms_per_s']} ms/s, {m['ms_per_question_total']} ms CPU "
            f"per question, {s['sustainable_questions_per_s']} q/s sustainable, "
            f"{s['attendees']} attendees"
        )
    console.print(f"report: {out}")
