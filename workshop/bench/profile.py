"""py-spy on the busiest Python service: an extra full-flow run with the profiler attached,
its collapsed stacks summarised by function and by package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from stack.common.settings import REPO_ROOT, ServiceName
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError
from workshop.bench.locust import run_locust
from workshop.bench.plan import Plan
from workshop.bench.results import Profile


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


def run_profile(
    plan: Plan,
    service: str,
    cfg: NativeConfig,
    pids: dict[str, int],
    names: list[str],
    work: Path,
    out: Path,
    step: Callable[[str], None],
) -> Profile:
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
    return Profile(
        service=service,
        file=str(target),
        questions_per_s=r.rps,
        packages=package_shares(raw),
    )
