"""`workshop load SCENARIO`: run a Locust scenario as a subprocess, with a live table.

Locust is never imported here (gevent monkey-patching would break the CLI, notebooks and the
demo): it runs as `python -m locust` with the scenario's config file, reports go to
`reports/<scenario>-<timestamp>/` (stats.json, stats_*.csv, report.html, junit.xml,
locust.log) and the command exits with Locust's exit code (0 ok, 1 requests failed, 3 an SLO
was breached). The admin token reaches Locust through the environment only.

`run_scenario()` is the same thing for Python callers (notebooks, the demo).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

REPO = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO / "scenarios"
CONF_DIR = SCENARIO_DIR / "conf"
LOCUSTFILE = SCENARIO_DIR / "locustfile.py"
REPORTS = REPO / "reports"
USER_CLASSES = ("AnalystUser", "ExplorerUser", "ApiClientUser")

app = typer.Typer(
    help="Run a Locust scenario.",
    add_completion=False,
    # One command mounted as `workshop load`: options may follow SCENARIO.
    context_settings={"allow_interspersed_args": True},
)
console = Console()


def scenarios() -> list[str]:
    return sorted(p.stem for p in CONF_DIR.glob("*.conf"))


def default_attendee() -> str:
    import getpass

    env = os.environ.get("WORKSHOP_ATTENDEE", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:
        return "anonymous"


def admin_token(cfg: NativeConfig | None = None) -> str | None:
    token = os.environ.get("ADMIN_TOKEN", "").strip()
    if token:
        return token
    path = (cfg or NativeConfig.from_env()).admin_token_file
    return path.read_text().strip() if path.exists() else None


@dataclass
class ScenarioResult:
    exit_code: int
    report_dir: Path
    stats: list[dict[str, Any]] = field(default_factory=list)  # Locust's JSON report

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def requests(self) -> int:
        return sum(e.get("num_requests", 0) for e in self.stats)

    @property
    def failures(self) -> int:
        return sum(e.get("num_failures", 0) for e in self.stats)

    @property
    def junit(self) -> Path:
        return self.report_dir / "junit.xml"

    @property
    def log(self) -> Path:
        return self.report_dir / "locust.log"


def build_command(
    name: str,
    report_dir: Path,
    *,
    host: str,
    users: int | None = None,
    duration: str | None = None,
    attendee: str | None = None,
    headless: bool = True,
    web_host: str = "127.0.0.1",
    web_port: int | None = None,
    processes: int | None = None,
    classes: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    conf = CONF_DIR / f"{name}.conf"
    if not conf.is_file():
        raise ValueError(f"no scenario `{name}`: choose one of {', '.join(scenarios())}")
    prefix = report_dir / "stats"
    cmd = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--config", str(conf),
        "--host", host,
        "--json-file", str(prefix),
        "--csv", str(prefix),
        "--csv-full-history",
        "--html", str(report_dir / "report.html"),
        "--slo-junit", str(report_dir / "junit.xml"),
        "--slo-scenario", name,
        "--attendee", attendee or default_attendee(),
    ]  # fmt: skip
    if users is not None:
        cmd += ["--users", str(users), "--shape-users", str(users)]
    if duration:
        cmd += ["--run-time", duration]
    if headless:
        cmd += ["--headless"]
    else:
        cmd += ["--headful", "--web-host", web_host]
        if web_port:
            cmd += ["--web-port", str(web_port)]
    if processes:
        cmd += ["--processes", str(processes)]
    cmd += list(extra_args)
    cmd += list(classes)
    return cmd


def locust_env(env: Mapping[str, str] | None, cfg: NativeConfig | None = None) -> dict[str, str]:
    out = {**os.environ, **(env or {})}
    token = out.get("ADMIN_TOKEN") or admin_token(cfg)
    if token:
        out["ADMIN_TOKEN"] = token
    out["PYTHONUNBUFFERED"] = "1"
    # The repo on the path whatever the caller's cwd (scenarios is a package of the repo).
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), out.get("PYTHONPATH")]))
    return out


def read_stats_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error):
        return []


def stats_table(rows: list[dict[str, str]], title: str) -> Table:
    table = Table(title=title)
    for column in ("type", "name", "requests", "fails", "p50 ms", "p95 ms", "p99 ms", "req/s"):
        table.add_column(
            column,
            justify="left" if column in ("type", "name") else "right",
            min_width=26 if column == "name" else None,
            no_wrap=column == "name",
        )
    for r in rows:
        fails = r.get("Failure Count", "0")
        colour = "red" if fails not in ("0", "") else "default"
        table.add_row(
            r.get("Type", ""),
            escape(r.get("Name", "")),
            r.get("Request Count", ""),
            f"[{colour}]{fails}[/]",
            r.get("50%", ""),
            r.get("95%", ""),
            r.get("99%", ""),
            _short(r.get("Requests/s", "")),
        )
    return table


def _short(value: str) -> str:
    try:
        return f"{float(value):.1f}"
    except ValueError:
        return value


def _web_rows(url: str) -> list[dict[str, str]]:
    """The same rows from Locust's web API (web mode writes no CSV until the end)."""
    import requests

    try:
        data = requests.get(f"{url}/stats/requests", timeout=1).json()
    except Exception:
        return []
    return [
        {
            "Type": s.get("method") or "",
            "Name": s.get("name", ""),
            "Request Count": str(s.get("num_requests", 0)),
            "Failure Count": str(s.get("num_failures", 0)),
            "50%": str(s.get("median_response_time", "")),
            "95%": str(s.get("response_time_percentile_0.95", "")),
            "99%": str(s.get("response_time_percentile_0.99", "")),
            "Requests/s": str(s.get("current_rps", "")),
        }
        for s in data.get("stats", [])
    ]


def run_scenario(
    name: str,
    *,
    host: str | None = None,
    users: int | None = None,
    duration: str | None = None,
    attendee: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    processes: int | None = None,
    classes: Sequence[str] = (),
    headless: bool = True,
    web_host: str = "127.0.0.1",
    web_port: int | None = None,
    report_root: Path = REPORTS,
    timeout: float | None = None,
    on_poll: Callable[[list[dict[str, str]]], None] | None = None,
) -> ScenarioResult:
    """Run a scenario headless (or with the web UI) in a subprocess; wait; read its reports.

    `on_poll` receives the current stats rows about once a second (the CLI's live table).
    On KeyboardInterrupt, Locust gets one SIGINT and is waited for, so its fault timeline and
    SLO gate still run; the exception is then re-raised.
    """
    cfg = NativeConfig.from_env()
    host = host or cfg.url(ServiceName.GATEWAY)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report_dir = report_root / f"{name}-{stamp}"
    n = 1
    while report_dir.exists():
        n += 1
        report_dir = report_root / f"{name}-{stamp}-{n}"
    report_dir.mkdir(parents=True)
    cmd = build_command(
        name, report_dir, host=host, users=users, duration=duration, attendee=attendee,
        headless=headless, web_host=web_host, web_port=web_port, processes=processes,
        classes=classes, extra_args=extra_args,
    )  # fmt: skip
    (report_dir / "command.txt").write_text(" ".join(cmd[1:]) + "\n")  # no secrets in argv
    web_url = f"http://{web_host}:{web_port or 8089}"
    with (report_dir / "locust.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=locust_env(env, cfg),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we forward exactly one SIGINT
        )
        deadline = time.monotonic() + timeout if timeout else None
        try:
            while proc.poll() is None:
                if deadline and time.monotonic() > deadline:
                    proc.send_signal(signal.SIGINT)
                    deadline = None
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    break
                if on_poll:
                    rows = (
                        read_stats_csv(report_dir / "stats_stats.csv")
                        if headless
                        else _web_rows(web_url)
                    )
                    on_poll(rows)
                time.sleep(1.0)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stats: list[dict[str, Any]] = []
    json_file = report_dir / "stats.json"
    if json_file.exists():
        with contextlib.suppress(ValueError):
            stats = json.loads(json_file.read_text())
    return ScenarioResult(proc.returncode, report_dir, stats)


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
    list_: Annotated[bool, typer.Option("--list", help="list the scenarios")] = False,
) -> None:
    """Run SCENARIO (scenarios/conf/SCENARIO.conf) with Locust; exit with Locust's code."""
    if list_ or not scenario:
        for name in scenarios():
            first = (CONF_DIR / f"{name}.conf").read_text().splitlines()[0].lstrip("# ")
            console.print(f"[bold]{name}[/]  {escape(first)}")
        if not scenario:
            return
    assert scenario is not None
    if scenario not in scenarios():
        console.print(f"[bold red]error:[/] no scenario `{scenario}` ({', '.join(scenarios())})")
        raise typer.Exit(2)
    chosen = [c.strip() for c in classes.split(",") if c.strip()]
    unknown = set(chosen) - set(USER_CLASSES)
    if unknown:
        console.print(f"[bold red]error:[/] unknown user class {', '.join(sorted(unknown))}")
        raise typer.Exit(2)
    target = host or NativeConfig.from_env().url(ServiceName.GATEWAY)
    console.print(f"scenario [bold]{scenario}[/] → {target}")
    if not headless:
        url = f"http://{web_host}:{web_port}"
        console.print(f"web UI: {url}  (Ctrl-C to stop)")
        webbrowser.open_new_tab(url) if os.environ.get("DISPLAY") else None
    title = f"{scenario} · live"
    live = Live(stats_table([], title), console=console, refresh_per_second=2, transient=False)
    try:
        with live:
            result = run_scenario(
                scenario, host=target, users=users, duration=duration, attendee=attendee,
                processes=processes, classes=chosen if chosen != list(USER_CLASSES) else (),
                headless=headless, web_host=web_host, web_port=web_port,
                on_poll=lambda rows: live.update(stats_table(rows, title)),
            )  # fmt: skip
            live.update(
                stats_table(read_stats_csv(result.report_dir / "stats_stats.csv"), scenario)
            )
    except KeyboardInterrupt:
        console.print("interrupted: Locust stopped, faults cleared")
        raise typer.Exit(130) from None
    summary = _junit_summary(result.junit)
    if summary is not None:
        console.print(summary)
    meaning = {0: "passed", 1: "requests failed", 2: "Locust error", 3: "SLO breached"}
    colour = "green" if result.exit_code == 0 else "red"
    console.print(
        f"[{colour}]{meaning.get(result.exit_code, 'exit')} (exit {result.exit_code})[/] · "
        f"{result.requests} requests, {result.failures} failed · reports: {result.report_dir}"
    )
    raise typer.Exit(result.exit_code)


if __name__ == "__main__":
    app()
