"""Run a Locust scenario as a subprocess and read its reports: the one runner behind
`workshop load`, lab traffic (`labs.runtime.traffic`) and Python callers (notebooks, tests).

Locust is never imported here (gevent monkey-patching would break the CLI, notebooks and the
demo): it runs as `python -m locust` with the scenario's config file, reports go to
`reports/<scenario>-<timestamp>/` (stats.json, stats_*.csv, report.html, junit.xml,
locust.log). The admin token reaches Locust through the environment only, never argv.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scenarios.faults import parse_duration
from stack.client import admin_token
from stack.common.attendee import default_attendee
from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

REPO = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO / "scenarios"
CONF_DIR = SCENARIO_DIR / "conf"
LOCUSTFILE = SCENARIO_DIR / "locustfile.py"
REPORTS = REPO / "reports"
USER_CLASSES = ("AnalystUser", "ExplorerUser", "ApiClientUser")
FINAL_STATS = "stats_final.csv"  # the stats table at quit (`--final-stats-csv`)


def scenarios() -> list[str]:
    return sorted(p.stem for p in CONF_DIR.glob("*.conf"))


def scenario_description(name: str) -> str:
    """The first paragraph of the comment a scenario's conf opens with. It ends at a blank or
    an indented comment line (an example command, not description)."""
    lines = []
    for line in (CONF_DIR / f"{name}.conf").read_text().splitlines():
        body = line[1:]
        if not line.startswith("#") or not body.strip() or body.startswith("  "):
            break
        lines.append(body.strip())
    return " ".join(lines)


def run_time(duration: str) -> str:
    """A run time as Locust's `--run-time` takes it (whole seconds), from any duration the kit
    reads (`90`, `90s`, `1.5m`, `1h`); ValueError names the option and the fix. Refused here,
    before Locust starts: Locust would exit 2 with the reason only in its log, or, for `0`,
    run nothing and pass its gate."""
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise ValueError(f"--duration: {exc}") from None
    if seconds < 1:
        raise ValueError(f"--duration: {duration!r} is under a second; give at least 1s")
    return f"{round(seconds)}s"


def check_options(
    name: str, *, users: int | None, duration: str | None, processes: int | None
) -> None:
    """A scenario that exists, users and worker processes Locust can run, a run time it reads;
    ValueError names the option and the fix."""
    if not (CONF_DIR / f"{name}.conf").is_file():
        raise ValueError(f"no scenario `{name}`: choose one of {', '.join(scenarios())}")
    if duration is not None:
        run_time(duration)
    if users is not None and users < 1:
        raise ValueError(f"--users: {users} users cannot ask anything; give at least 1")
    if processes is not None and processes != -1 and processes < 1:
        raise ValueError(
            f"--processes: {processes} is not a count; give 1 or more, or -1 (one per CPU)"
        )


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
    check_options(name, users=users, duration=duration, processes=processes)
    conf = CONF_DIR / f"{name}.conf"
    prefix = report_dir / "stats"
    cmd = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--config", str(conf),
        "--host", host,
        "--json-file", str(prefix),
        "--csv", str(prefix),
        "--csv-full-history",
        "--final-stats-csv", str(report_dir / FINAL_STATS),
        "--html", str(report_dir / "report.html"),
        "--slo-junit", str(report_dir / "junit.xml"),
        "--slo-scenario", name,
        "--attendee", attendee or default_attendee(),
    ]  # fmt: skip
    if users is not None:
        cmd += ["--users", str(users), "--shape-users", str(users)]
    if duration is not None:
        cmd += ["--run-time", run_time(duration)]
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
    token = admin_token(cfg, out)
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


def final_stats(report_dir: Path) -> list[dict[str, str]]:
    """A finished run's stats rows: as Locust counted them when it quit (FINAL_STATS, which
    the locustfile writes), else its last once-a-second `stats_stats.csv`."""
    final = report_dir / FINAL_STATS
    return read_stats_csv(final if final.is_file() else report_dir / "stats_stats.csv")


def web_rows(url: str) -> list[dict[str, str]]:
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
    # Refused before a report folder exists for a run that never happens.
    check_options(name, users=users, duration=duration, processes=processes)
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
                        else web_rows(web_url)
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
