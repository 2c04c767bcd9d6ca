"""Footprint on a t3.small: 25 Locust users for 60 s against the compose stack; every container's
peak memory (docker stats) stays within its limit, the sum within 1.9 GB, nothing OOM-killed.
The figures are written to reports/docker-footprint.json and .md (docs/deploy-vm.md quotes them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.docker.conftest import DEFAULT_SERVICES, PROJECT, REPO, ComposeStack, docker

UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2,
         "gb": 1000**3}  # fmt: skip
BUDGET = 1.9e9


def _bytes(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)\s*([a-zA-Z]+)", text.strip())
    assert m, text
    return float(m.group(1)) * UNITS[m.group(2).lower()]


def _sample(names: dict[str, str], peaks: dict[str, float], limits: dict[str, float]) -> None:
    out = docker("stats", "--no-stream", "--format", "{{json .}}", *names, check=False).stdout
    for line in out.splitlines():
        row = json.loads(line)
        service = names.get(row["Name"]) or names.get(row["ID"])
        if service is None:
            continue
        used, limit = (p.strip() for p in row["MemUsage"].split("/"))
        peaks[service] = max(peaks.get(service, 0.0), _bytes(used))
        limits[service] = _bytes(limit)


def test_footprint_under_25_users(stack: ComposeStack, tmp_path: Path) -> None:
    names = {}
    for c in stack.ps():
        if c["Service"] in DEFAULT_SERVICES:
            names[c["Name"]] = c["Service"]
    peaks: dict[str, float] = {}
    limits: dict[str, float] = {}
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            _sample(names, peaks, limits)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    cmd = [
        sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "locustfile.py"),
        "--config", str(REPO / "scenarios" / "conf" / "baseline.conf"),
        "--host", stack.gateway_url(), "--shape-users", "25", "--spawn-rate", "5",
        "--shape-duration", "60", "--run-time", "70s", "--attendee", "footprint",
        "--json-file", str(tmp_path / "stats"), "--csv", str(tmp_path / "stats"),
        "--html", str(tmp_path / "report.html"), "--slo-junit", str(tmp_path / "junit.xml"),
    ]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    stop.set()
    thread.join(timeout=30)
    stats_file = tmp_path / "stats.json"
    entries = json.loads(stats_file.read_text()) if stats_file.exists() else []
    requests = sum(e.get("num_requests", 0) for e in entries if isinstance(e, dict))
    oom = {s: docker("inspect", "-f", "{{.State.OOMKilled}}", n).stdout.strip()
           for n, s in names.items()}  # fmt: skip
    total = sum(peaks.values())
    report = {
        "users": 25,
        "seconds": round(elapsed, 1),
        "locust_exit": proc.returncode,
        "requests": requests,
        "project": PROJECT,
        "peak_mib": {s: round(v / 2**20, 1) for s, v in sorted(peaks.items())},
        "limit_mib": {s: round(v / 2**20, 1) for s, v in sorted(limits.items())},
        "sum_peak_mib": round(total / 2**20, 1),
        "oom_killed": oom,
    }
    reports = REPO / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "docker-footprint.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = [f"| {s} | {report['peak_mib'][s]} | {report['limit_mib'].get(s)} |"
            for s in report["peak_mib"]]  # fmt: skip
    (reports / "docker-footprint.md").write_text(
        "| container | peak MiB | limit MiB |\n|---|---|---|\n"
        + "\n".join(rows)
        + f"\n| **sum** | **{report['sum_peak_mib']}** | |\n"
    )
    print(json.dumps(report, indent=2))
    assert set(peaks) == set(DEFAULT_SERVICES), report
    assert requests > 25 * 10, (requests, proc.stderr[-2000:])
    for service, peak in peaks.items():
        assert peak <= limits[service], (service, report)
    assert total <= BUDGET, report
    assert all(v == "false" for v in oom.values()), oom
