"""``workshop traces``: browse traces kept locally by the collector in offline mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from labs.runtime import links
from labs.telemetry import (
    load_spans,
    signal_files,
    trace_spans,
    traces,
    traces_table,
    waterfall_text,
)
from stack.native.config import local_telemetry_dir

app = typer.Typer(
    help="List and inspect traces stored locally (offline mode writes them to data/telemetry).",
    no_args_is_help=False,
)
console = Console()


def default_dir() -> Path:
    # It used to be <repo>/data/telemetry whatever WORKSHOP_DATA_DIR said: a stack beside
    # another one listed the other's traces.
    return local_telemetry_dir()


DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Directory with traces*.jsonl (default: $TELEMETRY_DIR, else the stack's)",
        file_okay=False,
    ),
]


def _require_files(directory: Path) -> None:
    if signal_files(directory, "traces"):
        return
    console.print(
        f"[yellow]No trace files in {directory}.[/yellow]\n"
        "Start the stack with [bold]workshop up[/bold] and send some traffic. Without "
        "CX_PRIVATE_KEY the collector runs in offline mode and writes traces to "
        "data/telemetry/traces.jsonl (set TELEMETRY_DIR or --dir to look elsewhere). "
        "With CX_PRIVATE_KEY set, traces go to Coralogix and a bounded local copy stays here."
    )
    raise typer.Exit(1)


@app.callback(invoke_without_command=True)
def list_traces(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only traces touching this service")
    ] = None,
    attendee: Annotated[
        str | None, typer.Option("--attendee", "-a", help="Only traces with workshop.attendee")
    ] = None,
    min_ms: Annotated[
        float | None, typer.Option("--min-ms", help="Only traces at least this long (ms)")
    ] = None,
    errors: Annotated[
        bool, typer.Option("--errors", help="Only traces with an error span")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many traces")] = 50,
    directory: DirOption = None,
) -> None:
    """List recent traces (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    d = directory or default_dir()
    _require_files(d)
    found = traces(
        load_spans(d),
        service=service,
        attendee=attendee,
        min_ms=min_ms,
        errors=errors,
        limit=limit,
    )
    if not found:
        console.print(f"[yellow]No traces match these filters in {d}.[/yellow]")
        raise typer.Exit(0)
    table = traces_table(found, max_width=console.width, attendee=not attendee, source=str(d))
    console.print(table)
    console.print(
        "[dim]workshop traces show <TRACE_ID> draws the waterfall (a prefix works).[/dim]"
    )


@app.command("show")
def show(
    trace_id: Annotated[str, typer.Argument(help="Trace id (hex) or a unique prefix")],
    directory: DirOption = None,
) -> None:
    """Print the waterfall of one trace."""
    d = directory or default_dir()
    _require_files(d)
    try:
        spans = trace_spans(load_spans(d), trace_id)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not spans:
        console.print(f"[red]Trace {trace_id} not found in {d}.[/red]")
        raise typer.Exit(1)
    console.print(waterfall_text(spans, max_width=console.width))
    start = min(s.start_ns for s in spans)
    end = max(s.start_ns + int(s.duration_ms * 1e6) for s in spans)
    tid = spans[0].trace_id
    url = links.trace_link(tid, start, end)
    if url:
        console.print(f"Coralogix Explore (this trace): {url}", soft_wrap=True)
    else:
        console.print(f"[dim]Coralogix: {links.NO_TEAM_HINT}[/dim]")
