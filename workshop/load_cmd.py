"""`workshop load SCENARIO`: run a Locust scenario as a subprocess, with a live table.

Locust is never imported here (gevent monkey-patching would break the CLI, notebooks and the
demo): it runs as `python -m locust` with the scenario's config file, reports go to
`reports/<scenario>-<timestamp>/` (stats.json, stats_*.csv, report.html, junit.xml,
locust.log; `--reports DIR` puts the folder elsewhere) and the command exits with Locust's
exit code (0 ok, 1 requests failed, 3 an SLO was breached). The admin token reaches Locust
through the environment only.

The runner itself is `scenarios.runner.run_scenario` (also used by lab traffic).
"""

from __future__ import annotations

import os
import re
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labs.runtime.views import live_view
from labs.telemetry.traces import table_width, text_width
from scenarios.runner import (
    REPORTS,
    USER_CLASSES,
    check_options,
    final_stats,
    run_scenario,
    scenario_description,
    scenarios,
)
from stack.client import Unreachable, require_reachable
from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

app = typer.Typer(
    help="Run a Locust scenario.",
    add_completion=False,
    # One command mounted as `workshop load`: options may follow SCENARIO.
    context_settings={"allow_interspersed_args": True},
)
console = Console()


_COLUMNS = ("type", "name", "reqs", "fails", "p50", "p95", "p99", "req/s")


def stats_table(rows: list[dict[str, str]], title: str, *, max_width: int = 120) -> Table:
    """Locust's stats rows as a table of at most `max_width` cells. Numbers are never cut (a
    cut 1200 reads as 120): they keep their width and the request name gives way, with "…".
    Latencies are in ms, said once in the caption so the headers stay short."""
    cells = [
        [
            r.get("Type", ""),
            r.get("Name", ""),
            r.get("Request Count", ""),
            r.get("Failure Count", "0"),
            r.get("50%", ""),
            r.get("95%", ""),
            r.get("99%", ""),
            _short(r.get("Requests/s", "")),
        ]
        for r in rows
    ]
    widths = [text_width(h, (c[i] for c in cells)) for i, h in enumerate(_COLUMNS)]
    name_room = max_width - table_width([*widths[:1], 0, *widths[2:]])
    table = Table(title=title, caption="p50, p95, p99 in ms", caption_justify="right")
    for column in _COLUMNS:
        table.add_column(
            column,
            justify="left" if column in ("type", "name") else "right",
            no_wrap=True,
            overflow="ellipsis",
            max_width=max(8, name_room) if column == "name" else None,
        )
    for c in cells:
        colour = "red" if c[3] not in ("0", "") else "default"
        table.add_row(c[0], escape(c[1]), c[2], f"[{colour}]{c[3]}[/]", *c[4:])
    return table


def _short(value: str) -> str:
    try:
        return f"{float(value):.1f}"
    except ValueError:
        return value


def _junit_summary(path: Path) -> Table | None:
    import xml.etree.ElementTree as ET

    if not path.exists():
        return None
    table = Table(title="SLO gate")
    table.add_column("objective")
    table.add_column("verdict")
    for case in ET.parse(path).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            verdict = f"[bold red]{escape(failure.get('message', 'breached'))}[/]"
        elif case.find("skipped") is not None:
            verdict = "[yellow]skipped (no requests)[/]"
        else:
            verdict = "[green]met[/]"
        table.add_row(escape(case.get("name", "")), verdict)
    return table


_ERROR_LINE = re.compile(r"(\w+Error: |error: |^Invalid )")


def locust_errors(log: Path, most: int = 3) -> list[str]:
    """The last distinct error lines of Locust's log (an exception, an argparse refusal):
    why Locust exited 2, without opening the log."""
    if not log.is_file():
        return []
    found: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        line = line.strip()
        if _ERROR_LINE.search(line) and line not in found:
            found.append(line)
    return found[-most:]


@app.callback(invoke_without_command=True)
def load(
    scenario: Annotated[
        str | None, typer.Argument(help="a scenario: a file name in scenarios/conf/")
    ] = None,
    users: Annotated[int | None, typer.Option(help="users (the peak of a shape)")] = None,
    duration: Annotated[
        str | None, typer.Option(help="run time, e.g. 30s, 5m (caps a shape)")
    ] = None,
    headless: Annotated[
        bool, typer.Option("--headless/--web", help="run headless, or open the web UI")
    ] = True,
    web_host: Annotated[str, typer.Option(help="web UI bind address")] = "127.0.0.1",
    web_port: Annotated[int, typer.Option(help="web UI port")] = 8089,
    attendee: Annotated[
        str | None, typer.Option(help="workshop.attendee baggage (env WORKSHOP_ATTENDEE)")
    ] = None,
    processes: Annotated[
        int | None, typer.Option(help="Locust worker processes on this machine (-1: per CPU)")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="gateway URL (default: the native stack's)")
    ] = None,
    classes: Annotated[str, typer.Option(help="comma-separated user classes")] = ",".join(
        USER_CLASSES
    ),
    reports: Annotated[
        Path, typer.Option(help="where the run's report folder goes (a CI job's artifacts)")
    ] = REPORTS,
    list_: Annotated[bool, typer.Option("--list", help="list the scenarios")] = False,
) -> None:
    """Run SCENARIO (scenarios/conf/SCENARIO.conf) with Locust; exit with Locust's code."""
    if list_ or not scenario:
        listing = Table.grid(padding=(0, 2))
        listing.add_column(no_wrap=True, style="bold")
        listing.add_column()
        for name in scenarios():
            listing.add_row(name, scenario_description(name))
        console.print(listing)
        if not scenario:
            return
    assert scenario is not None
    try:
        check_options(scenario, users=users, duration=duration, processes=processes)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    chosen = [c.strip() for c in classes.split(",") if c.strip()]
    unknown = set(chosen) - set(USER_CLASSES)
    if unknown:
        console.print(f"[bold red]error:[/] unknown user class {', '.join(sorted(unknown))}")
        raise typer.Exit(2)
    target = host or NativeConfig.from_env().url(ServiceName.GATEWAY)
    try:  # Locust would run its whole duration failing every request, then breach its gate
        require_reachable(target)
    except Unreachable as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"scenario [bold]{scenario}[/] → {target}")
    if not headless:
        url = f"http://{web_host}:{web_port}"
        console.print(f"web UI: {url}  (Ctrl-C to stop)")
        webbrowser.open_new_tab(url) if os.environ.get("DISPLAY") else None
    title = f"{scenario} · live"

    def table(rows: list[dict[str, str]], heading: str = title) -> Table:
        return stats_table(rows, heading, max_width=console.width)

    try:
        with live_view(console, table([]), refresh_per_second=2) as live:
            result = run_scenario(
                scenario, host=target, users=users, duration=duration, attendee=attendee,
                processes=processes, classes=chosen if chosen != list(USER_CLASSES) else (),
                headless=headless, web_host=web_host, web_port=web_port, report_root=reports,
                on_poll=lambda rows: live.update(table(rows)),
            )  # fmt: skip
            live.update(table(final_stats(result.report_dir), scenario))
    except KeyboardInterrupt:
        console.print("interrupted: Locust stopped, faults cleared")
        raise typer.Exit(130) from None
    summary = _junit_summary(result.junit)
    if summary is not None:
        console.print(summary)
    if result.exit_code == 2:
        for line in locust_errors(result.log):
            console.print(f"[red]locust:[/] {escape(line)}")
    meaning = {0: "passed", 1: "requests failed", 2: "Locust error", 3: "SLO breached"}
    colour = "green" if result.exit_code == 0 else "red"
    console.print(
        f"[{colour}]{meaning.get(result.exit_code, 'exit')} (exit {result.exit_code})[/] · "
        f"{result.requests} requests, {result.failures} failed · reports: {result.report_dir}"
    )
    raise typer.Exit(result.exit_code)


if __name__ == "__main__":
    app()
