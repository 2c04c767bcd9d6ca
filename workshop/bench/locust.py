"""Locust, headless, as a subprocess (never imported here: gevent patches the interpreter):
one run of one flow at one level → a RunResult from its CSV stats and the sampled processes."""

from __future__ import annotations

import contextlib
import csv
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from stack.common.settings import REPO_ROOT
from stack.native.supervisor import LaunchError
from workshop.bench.results import ProcessStats, RunResult
from workshop.bench.sampler import Sampler

# The locustfile stays beside the package: subprocesses run it by path.
LOCUSTFILE = Path(__file__).parent.parent / "bench_locustfile.py"


def locust_exe() -> str:
    exe = Path(sys.executable).with_name("locust")
    if exe.exists():
        return str(exe)
    found = shutil.which("locust")
    if not found:
        raise LaunchError("locust is not installed in this environment (`make bootstrap`)")
    return found


def _num(value: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(v) else v


def parse_stats(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    rows: dict[tuple[str, str], dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows[(row["Type"], row["Name"])] = {
                "requests": _num(row["Request Count"]),
                "failures": _num(row["Failure Count"]),
                "rps": _num(row["Requests/s"]),
                "p50": _num(row["50%"]),
                "p95": _num(row["95%"]),
                "p99": _num(row["99%"]),
                "avg": _num(row["Average Response Time"]),
            }
    return rows


FLOWS = {
    # flow → (Locust user class, (type, name) of the row that defines the flow's throughput)
    "full": ("FullFlowUser", ("POST", "POST /api/queries")),
    "cheap": ("CheapUser", ("GET", "GET /health")),
    "chain": ("ChainUser", ("POST", "POST chain")),
}


def run_locust(
    flow: str,
    users: int,
    duration: float,
    host: str,
    pids: dict[str, int],
    stack_names: list[str],
    workdir: Path,
    tag: str,
    during: Callable[[], None] | None = None,
) -> RunResult:
    user_class, key = FLOWS[flow]
    prefix = workdir / tag
    log = workdir / f"{tag}.log"
    cmd = [
        locust_exe(),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{max(1, round(duration))}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    with log.open("wb") as out:
        proc = psutil.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            with Sampler({**pids, "locust": proc.pid}) as sampler:
                if during is not None:
                    during()
                proc.wait(timeout=duration + 90)
        except BaseException:
            with contextlib.suppress(psutil.Error):
                proc.kill()
            raise
    stats_file = Path(f"{prefix}_stats.csv")
    if proc.returncode != 0 or not stats_file.exists():
        tail = log.read_text(errors="replace")[-2000:]
        raise LaunchError(f"locust ({flow}, {users} users) failed ({proc.returncode}):\n{tail}")
    rows = parse_stats(stats_file)
    agg = rows.get(("", "Aggregated"), {})
    main = rows.get(key, {})
    http_rows = [v for (t, n), v in rows.items() if n != "Aggregated" and t != "JOB"]
    procs = {n: ProcessStats(**v) for n, v in sampler.report(wall=duration).items()}
    result = RunResult(
        flow=flow,
        users=users,
        duration=duration,
        requests=int(agg.get("requests", 0)),
        failures=int(agg.get("failures", 0)),
        error_ratio=round(agg.get("failures", 0) / agg["requests"], 4)
        if agg.get("requests")
        else 0.0,
        rps=round(main.get("rps", 0.0), 2),
        total_rps=round(sum(v["rps"] for v in http_rows), 2),
        p50_ms=main.get("p50", 0.0),
        p95_ms=main.get("p95", 0.0),
        p99_ms=main.get("p99", 0.0),
        stack_cpu_pct=round(sum(procs[n].cpu_pct for n in stack_names if n in procs), 1),
        stack_rss_max_mib=sampler.max_total_mib(stack_names),
        processes=procs,
    )
    if flow == "full":
        poll = rows.get(("GET", "GET /api/queries/{id}"), {})
        job = rows.get(("JOB", "submit→done"), {})
        result.poll_p95_ms = poll.get("p95", 0.0)
        result.jobs = int(job.get("requests", 0))
        result.job_failures = int(job.get("failures", 0))
        result.job_p50_ms = job.get("p50", 0.0)
        result.job_p95_ms = job.get("p95", 0.0)
    return result
