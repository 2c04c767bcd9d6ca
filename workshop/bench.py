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
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import psutil
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from stack.common.settings import REPO_ROOT, ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError, Supervisor, port_in_use
from workshop import bench_budget, bench_ui, validation_bench
from workshop.bench_findings import findings

app = typer.Typer(add_completion=False)
console = Console()

LOCUSTFILE = Path(__file__).with_name("bench_locustfile.py")
MIB = 1024 * 1024
# The full flow's synchronous path is five HTTP exchanges through five processes:
# client→api-gateway, gateway→query-service, query-service→external-api-service,
# gateway→validation-service, gateway→queue-service. The chain: client→hop0→…→hop4.
CHAIN_HOPS = 5
PYTHON_SERVICES = [s.value for s in ServiceName]
# The profile's top finding, undone: polls through queue-service and storage-service.
BEFORE_FIX_ENV = {"GATEWAY_POLL_VIA": "services"}
FIX = (
    "polls read the job hash in Redis (one round trip) instead of asking queue-service, "
    "then storage-service (two HTTP hops)"
)
TARGETS = {
    "full_vs_chain": 0.4,
    "p95_ms": 250.0,
    "job_p95_ms": 1000.0,
    "telemetry_ratio": 0.85,
    "idle_stack_mib": 1024.0,
    "loaded_stack_mib": 1.3 * 1024,
    "service_idle_mib": 100.0,
    "startup_s": 15.0,
}


# --------------------------------------------------------------------------- plan & config
@dataclass
class Plan:
    short: bool
    levels: list[int]
    duration: float
    warmup: float
    overhead_duration: float  # per arm of the comparison, split into `rounds` slices
    chain_duration: float
    settle: float
    rounds: int

    @property
    def slice(self) -> float:
        return max(1.0, round(self.overhead_duration / self.rounds))

    @property
    def middle(self) -> int:
        return self.levels[len(self.levels) // 2]

    @property
    def top(self) -> int:
        return max(self.levels)


def make_plan(short: bool, users: str | None, duration: float | None) -> Plan:
    if users:
        try:
            levels = sorted({int(u) for u in users.split(",") if u.strip()})
        except ValueError:
            raise typer.BadParameter(
                f"--users takes numbers separated by commas, not {users!r}"
            ) from None
        if not levels or min(levels) < 1:
            raise typer.BadParameter("--users needs at least one level ≥ 1")
    else:
        levels = [2, 4] if short else [10, 25, 50]
    if short:
        d = duration or 5.0
        return Plan(True, levels, d, 3.0, 4.0, 3.0, 1.0, 2)
    d = duration or 60.0
    return Plan(False, levels, d, 10.0, d, d, 3.0, 4)


def bench_config(data_dir: Path, env: dict[str, str] | None = None) -> NativeConfig:
    """The stack's config: ports from a base of 23000 unless the environment moves them."""
    env = dict(os.environ if env is None else env)

    def port(name: str, default: int) -> int:
        raw = env.get(name, "")
        if raw and not raw.isdigit():
            raise typer.BadParameter(f"{name} must be a port number, got {raw!r}")
        return int(raw) if raw else default

    base = port("WORKSHOP_PORT_BASE", 23010)
    return NativeConfig(
        data_dir=data_dir.resolve(),
        port_base=base,
        redis_port=port("REDIS_PORT", 23379),
        otlp_grpc_port=port("OTLP_GRPC_PORT", 23317),
        otlp_http_port=port("OTLP_HTTP_PORT", 23318),
        collector_health_port=port("COLLECTOR_HEALTH_PORT", 23133),
        nginx_http_port=base + 70,
        nginx_https_port=base + 71,
    )


def chain_ports(cfg: NativeConfig) -> list[int]:
    return [cfg.port_base + 20 + i for i in range(CHAIN_HOPS)]


# --------------------------------------------------------------------------- sampling
def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _cpu_rss(proc: psutil.Process, children: bool = True) -> tuple[float, float]:
    cpu = rss = 0.0
    for p in _tree(proc) if children else [proc]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
    return cpu, rss


class Sampler:
    """CPU seconds and RSS of named processes (each with its children), once a second."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0) -> None:
        self.procs = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.procs[name] = psutil.Process(pid)
        self.interval = interval
        self.samples: list[dict[str, float]] = []
        self._cpu0: dict[str, float] = {}
        self._cpu1: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = self._t1 = 0.0

    def _sample(self) -> dict[str, tuple[float, float]]:
        # supervisord alone: its children are the programs, sampled under their own names.
        return {name: _cpu_rss(p, name != "supervisord") for name, p in self.procs.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now = self._sample()
            # A process that has just exited reads as 0: keep its last CPU time instead.
            self._cpu1.update({n: v[0] for n, v in now.items() if v[0] > 0})
            self.samples.append({n: v[1] for n, v in now.items()})

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        first = self._sample()
        self._cpu0 = {n: v[0] for n, v in first.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        last = self._sample()
        self._t1 = time.monotonic()
        # A process that died keeps its last sampled CPU time.
        for n, v in last.items():
            if v[0] > 0:
                self._cpu1[n] = v[0]
        if not self.samples:
            self.samples.append({n: v[1] for n, v in last.items()})

    def report(self, wall: float | None = None) -> dict[str, dict[str, float]]:
        wall = wall or max(self._t1 - self._t0, 1e-9)
        out = {}
        for name in self.procs:
            rss = [s[name] for s in self.samples if s.get(name)]
            cpu = max(self._cpu1.get(name, 0.0) - self._cpu0.get(name, 0.0), 0.0)
            out[name] = {
                "cpu_s": round(cpu, 3),
                "cpu_pct": round(100 * cpu / wall, 1),
                "rss_mean_mib": round(sum(rss) / len(rss) / MIB, 1) if rss else 0.0,
                "rss_max_mib": round(max(rss) / MIB, 1) if rss else 0.0,
            }
        return out

    def max_total_mib(self, names: list[str]) -> float:
        totals = [sum(s.get(n, 0.0) for n in names) for s in self.samples]
        return round(max(totals) / MIB, 1) if totals else 0.0


# --------------------------------------------------------------------------- locust
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


@dataclass
class RunResult:
    flow: str
    users: int
    duration: float
    requests: int = 0
    failures: int = 0
    error_ratio: float = 0.0
    rps: float = 0.0  # the flow's own unit: questions/s (full), requests/s (cheap, chain)
    total_rps: float = 0.0  # every HTTP request Locust made
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    poll_p95_ms: float | None = None
    jobs: int | None = None
    job_failures: int | None = None
    job_p50_ms: float | None = None
    job_p95_ms: float | None = None
    stack_cpu_pct: float = 0.0
    stack_rss_max_mib: float = 0.0
    processes: dict[str, dict[str, float]] = field(default_factory=dict)


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
    during: Any = None,
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
    procs = sampler.report(wall=duration)
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
        stack_cpu_pct=round(sum(procs[n]["cpu_pct"] for n in stack_names if n in procs), 1),
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


# --------------------------------------------------------------------------- the stack
def stack_pids(cfg: NativeConfig) -> dict[str, int]:
    sup = Supervisor(cfg)
    pids: dict[str, int] = {}
    if sup.pid:
        pids["supervisord"] = sup.pid
    for name in ["redis", "collector", *PYTHON_SERVICES]:
        pid = sup.program_pid(name)
        if pid:
            pids[name] = pid
    return pids


def idle_rss(pids: dict[str, int], seconds: float) -> dict[str, float]:
    with Sampler(pids, interval=0.5) as sampler:
        time.sleep(max(seconds, 1.0))
    return {n: v["rss_mean_mib"] for n, v in sampler.report().items()}


def fresh_dir(path: Path) -> None:
    path = path.resolve()
    if path in (REPO_ROOT, REPO_ROOT / "data", Path.home(), Path("/")):
        raise typer.BadParameter(f"refusing to wipe {path}: give the bench its own directory")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


@contextlib.contextmanager
def chain(cfg: NativeConfig, log_dir: Path) -> Iterator[dict[str, int]]:
    ports = chain_ports(cfg)
    busy = [p for p in ports if port_in_use(p)]
    if busy:
        raise LaunchError(f"chain ports in use: {busy} (move them with WORKSHOP_PORT_BASE)")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            nxt = f"http://127.0.0.1:{ports[i + 1]}/" if i + 1 < len(ports) else ""
            env = {**os.environ, "CHAIN_NEXT": nxt, "OTEL_SDK_DISABLED": "true"}
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "workshop.bench_chain:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "2048",
            ]
            with (log_dir / f"chain-hop{i}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env
                    )
                )
        deadline = time.monotonic() + 30
        for port in ports:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise LaunchError(
                            f"chain hop on port {port} did not start; see {log_dir}"
                        ) from None
                    time.sleep(0.1)
        yield {f"hop{i}": p.pid for i, p in enumerate(procs)}
    finally:
        for p in procs:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------- profiling
def _read_pyspy(raw: Path) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """py-spy's collapsed stacks → (total, self samples per frame, inclusive, self per package)."""
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_c[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    by_package: Counter[str] = Counter()
    for frame, n in self_c.items():
        by_package[_package(frame)] += n
    return total, self_c, incl, by_package


def package_shares(raw: Path) -> dict[str, float]:
    """Percent of a profile's samples spent (self) in each package, largest first."""
    total, _, _, by_package = _read_pyspy(raw)
    return {pkg: round(100 * n / max(total, 1), 1) for pkg, n in by_package.most_common()}


def summarise_pyspy(raw: Path, service: str, top: int = 30) -> str:
    """py-spy's collapsed stacks → the functions with the most self and inclusive samples."""
    total, self_c, incl, by_package = _read_pyspy(raw)
    lines = [f"py-spy profile of {service}: {total} samples (100 Hz, active threads only)", ""]
    lines.append("self samples by package (where the CPU is spent, leaf frame's package)")
    for pkg, n in by_package.most_common(20):
        lines.append(f"{100 * n / max(total, 1):6.1f}%  {n:7d}  {pkg}")
    lines.append("")
    for title, counter in (("self", self_c), ("inclusive", incl)):
        lines.append(f"top {top} by {title} samples")
        for frame, n in counter.most_common(top):
            lines.append(f"{100 * n / max(total, 1):6.1f}%  {n:7d}  {frame}")
        lines.append("")
    return "\n".join(lines)


def _package(frame: str) -> str:
    """`func (/…/site-packages/aiohttp/http_writer.py:116)` → `aiohttp`; stack code by module."""
    path = frame.rpartition("(")[2].rpartition(":")[0]
    if "site-packages/" in path:
        parts = path.split("site-packages/", 1)[1].split("/")
        if parts[0] == "opentelemetry" and len(parts) > 2:
            return "opentelemetry." + parts[1]
        return parts[0].removesuffix(".py")
    if f"{REPO_ROOT}/" in path:
        return path.split(f"{REPO_ROOT}/", 1)[1].removesuffix(".py").replace("/", ".")
    if "/lib/python" in path:
        rest = path.rsplit("/lib/python", 1)[1].split("/", 1)[-1]  # "3.11/asyncio/x.py"
        return "stdlib." + rest.split("/")[0].removesuffix(".py")
    return path or "?"


def pyspy_exe() -> str | None:
    exe = Path(sys.executable).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


# --------------------------------------------------------------------------- machine
def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " (+ uncommitted changes)"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "cpu_model": model,
        "python": platform.python_version(),
        "commit": commit,
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- the run
def merge_slices(runs: list[RunResult]) -> dict[str, Any]:
    """One arm's equal-length slices → one run: throughput and CPU % are the slices' mean,
    counts and CPU seconds their sum, each latency percentile the median of the slices'."""

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 2)

    def median(key: str) -> float:
        return float(statistics.median(getattr(r, key) or 0.0 for r in runs))

    requests = sum(r.requests for r in runs)
    failures = sum(r.failures for r in runs)
    processes: dict[str, dict[str, float]] = {}
    for name in runs[0].processes:
        per = [r.processes[name] for r in runs if name in r.processes]
        processes[name] = {
            "cpu_s": round(sum(p["cpu_s"] for p in per), 3),
            "cpu_pct": mean([p["cpu_pct"] for p in per]),
            "rss_mean_mib": mean([p["rss_mean_mib"] for p in per]),
            "rss_max_mib": max(p["rss_max_mib"] for p in per),
        }
    merged = RunResult(
        flow=runs[0].flow,
        users=runs[0].users,
        duration=sum(r.duration for r in runs),
        requests=requests,
        failures=failures,
        error_ratio=round(failures / requests, 4) if requests else 0.0,
        rps=mean([r.rps for r in runs]),
        total_rps=mean([r.total_rps for r in runs]),
        p50_ms=median("p50_ms"),
        p95_ms=median("p95_ms"),
        p99_ms=median("p99_ms"),
        poll_p95_ms=median("poll_p95_ms"),
        jobs=sum(r.jobs or 0 for r in runs),
        job_failures=sum(r.job_failures or 0 for r in runs),
        job_p50_ms=median("job_p50_ms"),
        job_p95_ms=median("job_p95_ms"),
        stack_cpu_pct=round(sum(r.stack_cpu_pct for r in runs) / len(runs), 1),
        stack_rss_max_mib=max(r.stack_rss_max_mib for r in runs),
        processes=processes,
    )
    return {**asdict(merged), "slices": len(runs)}


def run_bench(
    plan: Plan,
    out: Path,
    data_dir: Path,
    profile: str | None,
    progress: Progress,
) -> dict[str, Any]:
    from stack.native import collector as collector_mod

    if not collector_mod.collector_binary().exists():
        raise LaunchError(
            "the collector is not built: run `make collector` before `workshop bench`"
        )
    fresh_dir(data_dir)
    work = data_dir / "locust"
    work.mkdir()
    cfg = bench_config(data_dir / "stack")
    # The comparison's other two arms run beside the main stack, on shifted ports.
    cfg_before = cfg.shifted(200, data_dir / "stack-before-fix").with_env(BEFORE_FIX_ENV)
    cfg_off = cfg.shifted(400, data_dir / "stack-otel-off").with_env({"OTEL_SDK_DISABLED": "true"})
    host = cfg.url(ServiceName.GATEWAY)
    steps = 2 * len(plan.levels) + 5 + 3 * plan.rounds + (1 if profile else 0)  # done() calls
    task = progress.add_task("benchmark", total=steps)
    results: dict[str, Any] = {
        "meta": {**machine(), "short": plan.short, "chain_hops": CHAIN_HOPS},
        # The derived figures too, so the report never recomputes them from the levels.
        "plan": {**asdict(plan), "middle": plan.middle, "top": plan.top, "slice": plan.slice},
        "runs": {"full": [], "cheap": []},
    }

    def step(msg: str) -> None:
        progress.update(task, description=msg)

    # 0. DataPrime validation, in-process, before any stack competes for the CPU
    step("DataPrime validation: corpus, then today's vs before side by side")
    results["validation"] = validation_bench.measure(rounds=3 if plan.short else 15)

    def done() -> None:
        progress.advance(task)

    def up(c: NativeConfig, label: str) -> float:
        launcher.down(c)
        step(f"{label}: starting the stack")
        t0 = time.monotonic()
        launcher.up(
            c, collector=True, nginx=False, timeout=120, progress=lambda m: step(f"{label}: {m}")
        )
        return round(time.monotonic() - t0, 2)

    def warmup(c: NativeConfig, pids: dict[str, int], names: list[str], label: str) -> None:
        step(f"{label}: warm-up ({plan.warmup:.0f} s)")
        users = min(plan.levels)
        run_locust(
            "full",
            users,
            plan.warmup,
            c.url(ServiceName.GATEWAY),
            pids,
            names,
            work,
            f"warmup-{label}",
        )

    try:
        # 1. up, warm-up, idle footprint
        results["startup_s"] = up(cfg, "telemetry on")
        done()
        pids = stack_pids(cfg)
        names = list(pids)
        warmup(cfg, pids, names, "on")
        step("idle footprint")
        time.sleep(plan.settle)
        idle = idle_rss(pids, plan.settle * 2)
        results["idle_rss_mib"] = idle
        results["idle_stack_mib"] = round(sum(idle.values()), 1)
        done()
        # The web UI's chart and waterfall endpoints, and what they cost with no page open.
        step("web UI endpoints (charts, waterfalls, idle cost)")
        results["ui"] = bench_ui.run(pids[ServiceName.GATEWAY.value], host, short=plan.short)

        # 2. every level: full flow, cheap endpoint
        for users in plan.levels:
            for flow in ("full", "cheap"):
                step(f"{flow} flow @ {users} users ({plan.duration:.0f} s)")
                r = run_locust(
                    flow, users, plan.duration, host, pids, names, work, f"{flow}-{users}"
                )
                results["runs"][flow].append(asdict(r))
                done()

        # 3. profile the service that used the most CPU at the top level
        if profile:
            top = next(r for r in results["runs"]["full"] if r["users"] == plan.top)
            target = profile
            if profile == "auto":
                target = max(
                    (n for n in top["processes"] if n in PYTHON_SERVICES),
                    key=lambda n: top["processes"][n]["cpu_s"],
                )
            results["profile"] = run_profile(plan, target, cfg, pids, names, work, out, step)
            done()

        # 4. the comparison at the middle level: the stack as built ("on"), with the
        # profiling fix undone ("before") and with telemetry off ("off"), all three up at
        # once; Locust alternates between them in short slices, rotating the order each
        # round, so a change in the machine's speed during the run hits every arm alike.
        step("starting the comparison stacks (fix undone; telemetry off)")
        results["startup_before_fix_s"] = up(cfg_before, "before the fix")
        results["startup_otel_off_s"] = up(cfg_off, "telemetry off")
        arms = {"on": cfg, "before": cfg_before, "off": cfg_off}
        arm_pids = {"on": pids, "before": stack_pids(cfg_before), "off": stack_pids(cfg_off)}
        for arm in ("before", "off"):
            warmup(arms[arm], arm_pids[arm], list(arm_pids[arm]), arm)
        done()
        slices: dict[str, list[RunResult]] = {arm: [] for arm in arms}
        for rnd in range(plan.rounds):
            order = list(arms)[rnd % 3 :] + list(arms)[: rnd % 3]
            for arm in order:
                step(
                    f"round {rnd + 1}/{plan.rounds}: {arm}, full flow @ {plan.middle} users "
                    f"({plan.slice:.0f} s)"
                )
                slices[arm].append(
                    run_locust(
                        "full",
                        plan.middle,
                        plan.slice,
                        arms[arm].url(ServiceName.GATEWAY),
                        arm_pids[arm],
                        list(arm_pids[arm]),
                        work,
                        f"full-{arm}-{plan.middle}-round{rnd + 1}",
                    )
                )
                done()
        results["full_otel_on"] = merge_slices(slices["on"])
        results["full_before_fix"] = merge_slices(slices["before"])
        results["full_otel_off"] = merge_slices(slices["off"])
        results["rounds"] = [
            {arm: slices[arm][rnd].rps for arm in arms} for rnd in range(plan.rounds)
        ]
        for c in arms.values():
            launcher.down(c)

        # 5. the ceiling, with the stack down
        step(f"chain of {CHAIN_HOPS} bare hops @ {plan.middle} users ({plan.chain_duration:.0f} s)")
        with chain(cfg, work) as hop_pids:
            r_chain = run_locust(
                "chain",
                plan.middle,
                plan.chain_duration,
                f"http://127.0.0.1:{chain_ports(cfg)[0]}",
                hop_pids,
                list(hop_pids),
                work,
                f"chain-{plan.middle}",
            )
        results["chain"] = asdict(r_chain)
        done()
    finally:
        step("stopping the stack")
        for c in (cfg, cfg_before, cfg_off):
            launcher.down(c)

    derive(results, plan)
    if "ui" in results:
        results["targets"] += bench_ui.targets(results["ui"])
    step("writing the report")
    write_report(results, out)
    done()
    return results


def run_profile(
    plan: Plan,
    service: str,
    cfg: NativeConfig,
    pids: dict[str, int],
    names: list[str],
    work: Path,
    out: Path,
    step: Any,
) -> dict[str, Any]:
    exe = pyspy_exe()
    if exe is None:
        raise LaunchError("--profile needs py-spy: `.venv/bin/pip install py-spy`")
    raw = work / f"profile-{service}.raw"
    step(f"profiling {service} under the full flow @ {plan.top} users")
    spy: dict[str, subprocess.Popen[bytes]] = {}

    def attach() -> None:
        spy["p"] = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pids[service]),
                "--rate",
                "100",
                "--nonblocking",
                "--duration",
                str(max(1, round(plan.duration))),
                "--format",
                "raw",
                "--output",
                str(raw),
                "--full-filenames",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    r = run_locust(
        "full",
        plan.top,
        plan.duration,
        cfg.url(ServiceName.GATEWAY),
        pids,
        names,
        work,
        f"profile-{service}",
        during=attach,
    )
    try:
        _, err = spy["p"].communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy["p"].kill()
        _, err = spy["p"].communicate()
    if not raw.exists():
        raise LaunchError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
    text = summarise_pyspy(raw, service)
    target = out.parent / "benchmarks" / f"profile-{service}.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# workshop bench --profile: {service}, full flow @ {plan.top} users, "
        f"{plan.duration:.0f} s, {r.rps:.1f} questions/s under py-spy\n"
    )
    target.write_text(header + text)
    return {
        "service": service,
        "file": str(target),
        "questions_per_s": r.rps,
        "packages": package_shares(raw),
    }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def derive(results: dict[str, Any], plan: Plan) -> None:
    full = {r["users"]: r for r in results["runs"]["full"]}
    mid, top = full[plan.middle], full[plan.top]
    chain_r = results["chain"]
    on, off = results["full_otel_on"], results["full_otel_off"]
    before = results["full_before_fix"]
    every = [*results["runs"]["full"], *results["runs"]["cheap"], on, before, off, chain_r]
    python_idle = {n: v for n, v in results["idle_rss_mib"].items() if n in PYTHON_SERVICES}
    heaviest = max(python_idle, key=python_idle.get) if python_idle else ""
    results["loaded_rss_mib"] = {n: v["rss_max_mib"] for n, v in top["processes"].items()}
    results["loaded_stack_mib"] = top["stack_rss_max_mib"]
    results["ratios"] = {
        "full_vs_chain": _ratio(mid["rps"], chain_r["rps"]),
        "full_gateway_requests_vs_chain": _ratio(mid["total_rps"], chain_r["rps"]),
        "telemetry_on_vs_off": _ratio(on["rps"], off["rps"]),
        "fix_after_vs_before": _ratio(on["rps"], before["rps"]),
    }
    # The same ratios round by round: their spread is the measurement's noise.
    results["ratio_rounds"] = {
        "telemetry_on_vs_off": [_ratio(r["on"], r["off"]) for r in results["rounds"]],
        "fix_after_vs_before": [_ratio(r["on"], r["before"]) for r in results["rounds"]],
    }
    errors = sum(r["failures"] for r in every)
    t = TARGETS
    results["targets"] = [
        _target(
            "full_vs_chain",
            f"full flow @ {plan.middle}: questions/s ÷ chain req/s",
            f"≥ {t['full_vs_chain']}",
            results["ratios"]["full_vs_chain"],
            results["ratios"]["full_vs_chain"] >= t["full_vs_chain"],
        ),
        _target(
            "p95_ms",
            f"full flow @ {plan.middle}: POST /api/queries p95",
            f"≤ {t['p95_ms']:.0f} ms",
            f"{mid['p95_ms']:.0f} ms",
            mid["p95_ms"] <= t["p95_ms"],
        ),
        _target(
            "job_p95_ms",
            f"full flow @ {plan.middle}: job submit→done p95",
            f"≤ {t['job_p95_ms']:.0f} ms",
            f"{mid['job_p95_ms']:.0f} ms",
            mid["job_p95_ms"] <= t["job_p95_ms"],
        ),
        _target("errors", "errors (every run)", "0", f"{errors}", errors == 0),
        _target(
            "telemetry_ratio",
            f"telemetry on ÷ off (full flow @ {plan.middle})",
            f"≥ {t['telemetry_ratio']}",
            results["ratios"]["telemetry_on_vs_off"],
            results["ratios"]["telemetry_on_vs_off"] >= t["telemetry_ratio"],
        ),
        _target(
            "idle_stack_mib",
            "whole stack RSS, idle",
            "≤ 1.0 GiB",
            f"{results['idle_stack_mib']:.0f} MiB",
            results["idle_stack_mib"] <= t["idle_stack_mib"],
        ),
        _target(
            "loaded_stack_mib",
            f"whole stack RSS @ {plan.top} users (max)",
            "≤ 1.3 GiB",
            f"{results['loaded_stack_mib']:.0f} MiB",
            results["loaded_stack_mib"] <= t["loaded_stack_mib"],
        ),
        _target(
            "service_idle_mib",
            "every Python service RSS, idle",
            f"≤ {t['service_idle_mib']:.0f} MiB",
            f"{python_idle.get(heaviest, 0):.0f} MiB ({heaviest})",
            bool(python_idle) and max(python_idle.values()) <= t["service_idle_mib"],
        ),
        *validation_bench.targets(results.get("validation"), _target),
        _target(
            "startup_s",
            "up → all ready (collector built)",
            f"≤ {t['startup_s']:.0f} s",
            f"{results['startup_s']:.1f} s",
            results["startup_s"] <= t["startup_s"],
        ),
    ]


def _target(key: str, what: str, target: str, measured: Any, ok: bool) -> dict[str, Any]:
    return {
        "key": key,
        "what": what,
        "target": target,
        "target_value": TARGETS.get(key, 0),
        "measured": measured,
        "ok": bool(ok),
    }


# --------------------------------------------------------------------------- the report
def write_plots(results: dict[str, Any], plot_dir: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    full, cheap = results["runs"]["full"], results["runs"]["cheap"]
    chain_r = results["chain"]
    files = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(
        [r["users"] for r in full], [r["rps"] for r in full], "o-", label="full flow: questions/s"
    )
    ax.plot(
        [r["users"] for r in full],
        [r["total_rps"] for r in full],
        "o--",
        label="full flow: gateway requests/s (asks + polls)",
    )
    ax.plot(
        [r["users"] for r in cheap],
        [r["rps"] for r in cheap],
        "s-",
        label="cheap: GET /health req/s",
    )
    ax.plot(
        [chain_r["users"]],
        [chain_r["rps"]],
        "r*",
        markersize=12,
        label=f"ceiling: {CHAIN_HOPS}-hop bare chain req/s",
    )
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("per second")
    ax.set_title("Throughput vs users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["throughput"] = "throughput.png"
    fig.savefig(plot_dir / files["throughput"], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(
        [r["users"] for r in full],
        [r["p95_ms"] for r in full],
        "o-",
        label="full flow: POST /api/queries p95",
    )
    ax.plot(
        [r["users"] for r in full],
        [r["job_p95_ms"] for r in full],
        "o--",
        label="full flow: job submit→done p95",
    )
    ax.plot(
        [r["users"] for r in cheap],
        [r["p95_ms"] for r in cheap],
        "s-",
        label="cheap: GET /health p95",
    )
    ax.axhline(TARGETS["p95_ms"], color="grey", linestyle=":", label="p95 target (250 ms)")
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("ms")
    ax.set_title("p95 latency vs users")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["p95"] = "p95.png"
    fig.savefig(plot_dir / files["p95"], dpi=100)
    plt.close(fig)

    idle, loaded = results["idle_rss_mib"], results["loaded_rss_mib"]
    names = [n for n in idle if n != "locust"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ys = range(len(names))
    ax.barh([y - 0.2 for y in ys], [idle[n] for n in names], height=0.4, label="idle")
    ax.barh(
        [y + 0.2 for y in ys],
        [loaded.get(n, 0) for n in names],
        height=0.4,
        label=f"{results['plan']['levels'][-1]} users (max)",
    )
    ax.axvline(
        TARGETS["service_idle_mib"], color="grey", linestyle=":", label="100 MiB per service (idle)"
    )
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("RSS (MiB)")
    ax.set_title("RSS per process, idle vs loaded")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files["rss"] = "rss.png"
    fig.savefig(plot_dir / files["rss"], dpi=100)
    plt.close(fig)
    return files


def _f(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def render_markdown(results: dict[str, Any], plots: dict[str, str], plot_rel: str) -> str:
    m, plan = results["meta"], results["plan"]
    mid, top = plan["middle"], plan["top"]
    L: list[str] = ["# Benchmarks", ""]
    if m["short"]:
        L += [
            "> **Short mode** (`--short`): a check that the benchmark runs, not a measurement.",
            "",
        ]
    L += [
        "Produced by `workshop bench` (`make bench`). Every figure below comes from one run on "
        "one machine; rerun it on a quiet machine before comparing.",
        "",
        "| date | cores | memory | CPU | Python | commit | load avg before (1/5/15 min) |",
        "|---|---|---|---|---|---|---|",
        f"| {m['date']} | {m['cores']} | {m['memory_gib']} GiB | {m['cpu_model']} | {m['python']} "
        f"| `{m['commit']}` | {' / '.join(str(x) for x in m['load_before'])} |",
        "",
        f"Levels: {', '.join(str(u) for u in plan['levels'])} users × {plan['duration']:.0f} s "
        "each, closed loop (no think time), Locust headless in its own process on the "
        "same machine. Native stack: collector on (file exporter unless CX_PRIVATE_KEY is set), "
        "nginx off, a fresh data dir.",
        "",
        "## Targets",
        "",
        "| | target | measured | |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        L.append(
            f"| {t['what']} | {t['target']} | {_f(t['measured'], 3)} "
            f"| {'✅' if t['ok'] else '❌'} |"
        )
    L += ["", *findings(results, PYTHON_SERVICES)]
    if "validation" in results:
        L += validation_bench.markdown(results["validation"])
    L += [
        "## Full flow (ask → poll every 20 ms → done)",
        "",
        "| users | questions/s | gateway req/s | POST p50 | p95 | p99 (ms) | poll p95 (ms) "
        "| jobs | job p50 | job p95 (ms) | error ratio | stack CPU % | stack RSS max (MiB) "
        "| Locust CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]["full"]:
        L.append(
            f"| {r['users']} | {_f(r['rps'])} | {_f(r['total_rps'])} | {_f(r['p50_ms'], 0)} "
            f"| {_f(r['p95_ms'], 0)} | {_f(r['p99_ms'], 0)} | {_f(r['poll_p95_ms'], 0)} "
            f"| {r['jobs']} "
            f"| {_f(r['job_p50_ms'], 0)} | {_f(r['job_p95_ms'], 0)} | {_f(r['error_ratio'], 4)} "
            f"| {_f(r['stack_cpu_pct'])} | {_f(r['stack_rss_max_mib'], 0)} "
            f"| {_f(r['processes'].get('locust', {}).get('cpu_pct'))} |"
        )
    L += [
        "",
        "## Cheap endpoint (gateway GET /health: no tracing, no fan-out)",
        "",
        "| users | req/s | p50 | p95 | p99 (ms) | error ratio | stack CPU % | Locust CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]["cheap"]:
        L.append(
            f"| {r['users']} | {_f(r['rps'])} | {_f(r['p50_ms'], 0)} | {_f(r['p95_ms'], 0)} "
            f"| {_f(r['p99_ms'], 0)} | {_f(r['error_ratio'], 4)} | {_f(r['stack_cpu_pct'])} "
            f"| {_f(r['processes'].get('locust', {}).get('cpu_pct'))} |"
        )
    on, off, ch = results["full_otel_on"], results["full_otel_off"], results["chain"]
    before = results["full_before_fix"]
    ratios = results["ratios"]
    L += [
        "",
        f"## The profiling fix, before and after (at {mid} users, this run)",
        "",
        f"The fix: {FIX}. The 'before' stack runs the old path "
        f"(`{' '.join(f'{k}={v}' for k, v in BEFORE_FIX_ENV.items())}`).",
        "",
        comparison_method(results),
        "",
        "| run | questions/s | gateway req/s | p50 | p95 | poll p95 | job p95 (ms) | errors "
        "| stack CPU % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (("after the fix", on), ("before the fix", before)):
        L.append(
            f"| {label} | {_f(r['rps'])} | {_f(r['total_rps'])} | {_f(r['p50_ms'], 0)} "
            f"| {_f(r['p95_ms'], 0)} | {_f(r['poll_p95_ms'], 0)} | {_f(r['job_p95_ms'], 0)} "
            f"| {r['failures']} | {_f(r['stack_cpu_pct'])} |"
        )
    L += [
        "",
        f"- after ÷ before: **{ratios['fix_after_vs_before']}** (questions/s); round by round: "
        f"{_rounds(results, 'fix_after_vs_before')}.",
        "",
        f"## Telemetry overhead and the ceiling (at {mid} users)",
        "",
        "| run | questions or req/s | p50 | p95 | p99 (ms) | job p95 (ms) | errors | stack CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (
        ("full flow, telemetry on", on),
        ("full flow, OTEL_SDK_DISABLED=true", off),
        (f"ceiling: {CHAIN_HOPS}-hop bare uvicorn chain", ch),
    ):
        L.append(
            f"| {label} | {_f(r['rps'])} | {_f(r['p50_ms'], 0)} | {_f(r['p95_ms'], 0)} "
            f"| {_f(r['p99_ms'], 0)} | {_f(r.get('job_p95_ms'), 0)} | {r['failures']} "
            f"| {_f(r['stack_cpu_pct'])} |"
        )
    L += [
        "",
        f"- telemetry on ÷ off: **{ratios['telemetry_on_vs_off']}**; round by round: "
        f"{_rounds(results, 'telemetry_on_vs_off')} (the same interleaved slices as above).",
        f"- full flow ÷ ceiling: **{ratios['full_vs_chain']}** (questions/s ÷ chain req/s); "
        "counting every gateway request (asks + polls): "
        f"{ratios['full_gateway_requests_vs_chain']}.",
        f"- The ceiling is {CHAIN_HOPS} processes in a row (`workshop/bench_chain.py`: bare ASGI, "
        "one shared aiohttp session, uvloop + httptools like the services): the same five HTTP "
        "exchanges as the ask's synchronous path — client→api-gateway, gateway→query-service, "
        "query-service→external-api-service, gateway→validation-service, gateway→queue-service — "
        "without FastAPI, pydantic, Redis, telemetry or the asynchronous job.",
        "",
        "## Footprint per process",
        "",
        f"Startup (`launcher.up` called → every service ready, collector already built): "
        f"**{results['startup_s']:.1f} s** (telemetry off: {results['startup_otel_off_s']:.1f} s).",
        "",
        f"| process | idle RSS (MiB) | RSS mean @ {top} | RSS max @ {top} (MiB) | CPU s @ {top} "
        f"| CPU % @ {top} |",
        "|---|---|---|---|---|---|",
    ]
    top_run = next(r for r in results["runs"]["full"] if r["users"] == top)
    for name, idle in results["idle_rss_mib"].items():
        p = top_run["processes"].get(name, {})
        L.append(
            f"| {name} | {_f(idle, 0)} | {_f(p.get('rss_mean_mib'), 0)} | "
            f"{_f(p.get('rss_max_mib'), 0)} | {_f(p.get('cpu_s'))} | {_f(p.get('cpu_pct'))} |"
        )
    lp = top_run["processes"].get("locust", {})
    L += [
        f"| **whole stack** | **{results['idle_stack_mib']:.0f}** | | "
        f"**{results['loaded_stack_mib']:.0f}** (max of the sum) | "
        f"| {top_run['stack_cpu_pct']:.1f} |",
        f"| locust (load generator, not in the total) | – | {_f(lp.get('rss_mean_mib'), 0)} | "
        f"{_f(lp.get('rss_max_mib'), 0)} | {_f(lp.get('cpu_s'))} | {_f(lp.get('cpu_pct'))} |",
        "",
        "RSS counts shared pages once per process; CPU % is CPU seconds over the run's length "
        "(100 % = one core). Sampled with psutil once a second, each program with its children.",
        "",
    ]
    if "profile" in results:
        prof = results["profile"]
        name = Path(prof["file"]).name
        L += [
            "## Profile",
            "",
            f"py-spy on **{prof['service']}** (the Python service with the most CPU at {top} "
            f"users), in an extra run: [`{name}`]({plot_rel}/{name}).",
            "",
        ]
    L += ["## Plots", ""]
    for key, title in (
        ("throughput", "Throughput vs users"),
        ("p95", "p95 vs users"),
        ("rss", "RSS per process, idle vs loaded"),
    ):
        L.append(f"![{title}]({plot_rel}/{plots[key]})")
        L.append("")
    L += bench_ui.markdown(results.get("ui"))
    L += [
        "## Method",
        "",
        "- Every Locust run is a separate `locust --headless` subprocess "
        "(`workshop/bench_locustfile.py`, FastHttpUser, `wait_time = 0`); figures come from its "
        "CSV stats. Percentiles are Locust's (rounded to its histogram buckets).",
        "- Each question is a corpus line plus a reference the generator ignores, so every ask "
        "misses the query cache and reaches the LLM stand-in.",
        "- Locust shares the machine's cores with the stack: its own CPU is in the tables.",
        f"- Raw figures: [`{Path(results.get('json_file', 'benchmarks.json')).name}`]"
        f"({Path(results.get('json_file', 'benchmarks.json')).name}).",
        "",
    ]
    return "\n".join(L)


def comparison_method(results: dict[str, Any]) -> str:
    plan = results["plan"]
    rounds, per = plan["rounds"], plan["slice"]
    return (
        f"Method: three stacks run side by side — as built, with the fix undone, with "
        f"telemetry off — each started fresh and warmed up. Locust then alternates between "
        f"them: {rounds} rounds of {per:.0f} s per stack, the order rotated each round, so a "
        "change in the machine's speed during the run hits every stack alike. Throughput and "
        "CPU are the mean of a stack's slices, each latency percentile the median of its "
        "slices' percentiles."
    )


def _rounds(results: dict[str, Any], key: str) -> str:
    return ", ".join(f"{v:.3f}" for v in results["ratio_rounds"][key])


def write_report(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_dir = out.parent / "benchmarks"
    plots = write_plots(results, plot_dir)
    results["plots"] = {k: str(plot_dir / v) for k, v in plots.items()}
    json_file = out.with_suffix(".json")
    results["json_file"] = str(json_file)
    json_file.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    report = render_markdown(results, plots, "benchmarks")
    # `--budget` owns its section: a full run keeps the last one measured.
    kept = bench_budget.section(out.read_text()) if out.exists() else None
    out.write_text(bench_budget.splice(report, kept) if kept else report)


# --------------------------------------------------------------------------- the command
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
    for t in results["targets"]:
        mark = "[green]✓[/]" if t["ok"] else "[red]✗[/]"
        console.print(f"{mark} {t['what']}: {_f(t['measured'], 3)} (target {t['target']})")
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
