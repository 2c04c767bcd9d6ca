"""Locust scenarios against the real native stack (Locust always runs as a subprocess).

Every run is 5–8 s and bounded by a timeout; the whole file takes about two minutes on two
cores, most of it the stack's start-up."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from importlib.util import find_spec
from pathlib import Path

import pytest

from scenarios.runner import LOCUSTFILE, REPO, run_scenario
from stack.common.settings import ServiceName
from tests.helpers import workshop_cli

pytestmark = [
    pytest.mark.stack,
    pytest.mark.timeout(120),
    # find_spec, not importorskip: importing locust here would monkey-patch pytest with gevent.
    pytest.mark.skipif(find_spec("locust") is None, reason="needs the [load] extra"),
]
SMOKE = REPO / "scenarios" / "conf" / "smoke.conf"
RUN = "6s"


def _env(stack) -> dict[str, str]:
    return {
        **os.environ,
        "ADMIN_TOKEN": stack.admin_token,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "WORKSHOP_FAULT_STATE_DIR": str(stack.cfg.data_dir / "fault-state"),
    }


def _base(stack, out: Path, *extra: str) -> list[str]:
    prefix = out / "stats"
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--config", str(SMOKE),
        "--host", stack.url(ServiceName.GATEWAY), "--run-time", RUN,
        "--json-file", str(prefix), "--csv", str(prefix), "--html", str(out / "report.html"),
        "--slo-junit", str(out / "junit.xml"), "--attendee", "load-test", *extra,
    ]  # fmt: skip


def _locust(stack, out: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        _base(stack, out, *extra),
        cwd=REPO,
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _requests(out: Path) -> int:
    return sum(e["num_requests"] for e in json.loads((out / "stats.json").read_text()))


def _failures(junit: Path) -> list[str]:
    root = ET.parse(junit).getroot()
    return [f.get("message", "") for f in root.iter("failure")]


def _cases(junit: Path) -> list[str]:
    return [c.get("name", "") for c in ET.parse(junit).getroot().iter("testcase")]


def test_smoke_passes_and_writes_every_report(stack, tmp_path) -> None:
    started = time.monotonic()
    result = run_scenario(
        "smoke",
        host=stack.url(ServiceName.GATEWAY),
        duration=RUN,
        attendee="load-test",
        env={"ADMIN_TOKEN": stack.admin_token},
        report_root=tmp_path,
        timeout=60,
    )
    log = result.log.read_text()
    assert result.exit_code == 0, log[-3000:]
    assert time.monotonic() - started < 30
    rd = result.report_dir
    assert rd.parent == tmp_path and rd.name.startswith("smoke-")
    for name in (
        "stats.json",
        "stats_stats.csv",
        "stats_stats_history.csv",
        "stats_final.csv",
        "report.html",
        "junit.xml",
    ):
        assert (rd / name).stat().st_size > 0, name
    names = {(e["method"], e["name"]) for e in result.stats}
    assert ("POST", "/api/queries") in names and ("GET", "/api/queries/[id]") in names
    assert result.requests > 10 and result.failures == 0
    assert _failures(result.junit) == [] and len(_cases(result.junit)) == 5
    assert stack.admin_token not in (rd / "command.txt").read_text()


def test_impossible_slo_exits_3_and_names_the_breach(stack, tmp_path) -> None:
    proc = _locust(stack, tmp_path, "--slo-p95-ms", "1")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "SLO breached: p95 of all requests was" in proc.stderr
    failures = _failures(tmp_path / "junit.xml")
    assert len(failures) == 1 and re.match(
        r"SLO breached: p95 of all requests was \d+ ms > 1 ms", failures[0]
    )


def test_error_fault_fails_the_smoke_gate_on_its_fail_ratio(stack, admin, tmp_path) -> None:
    fault = admin.add_fault(
        "error", "query-service", params={"status": 503}, probability=0.5, ttl_seconds=60
    )
    try:
        proc = _locust(stack, tmp_path)
    finally:
        admin.remove_fault(fault["id"])
    assert proc.returncode == 3, proc.stderr[-3000:]
    failures = _failures(tmp_path / "junit.xml")
    assert any(f.startswith("SLO breached: fail ratio of all requests") for f in failures)


def test_processes_combine_stats_and_gate(stack, tmp_path) -> None:
    proc = _locust(stack, tmp_path, "--processes", "2", timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 workers connected" in proc.stderr
    sent = [int(n) for n in re.findall(r"worker \d+ sent (\d+) requests", proc.stderr)]
    assert len(sent) == 2 and all(n > 0 for n in sent), proc.stderr[-2000:]
    assert _requests(tmp_path) >= 0.9 * sum(sent)  # the master's report has both workers'
    assert _failures(tmp_path / "junit.xml") == [] and len(_cases(tmp_path / "junit.xml")) == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_master_with_two_workers_on_loopback(stack, tmp_path) -> None:
    port = _free_port()
    master = subprocess.Popen(
        _base(stack, tmp_path, "--master", "--master-bind-host", "127.0.0.1",
              "--master-bind-port", str(port), "--expect-workers", "2",
              "--expect-workers-max-wait", "30", "--slo-p95-ms", "1"),
        cwd=REPO, env=_env(stack), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker_cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
                  "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    workers = [
        subprocess.Popen(worker_cmd, cwd=REPO, env=_env(stack), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    try:
        out, _ = master.communicate(timeout=60)
        logs = [w.communicate(timeout=20)[0] for w in workers]
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert master.returncode == 3, out[-3000:]  # same verdict as a single process
    assert "2 workers connected" in out
    sent = [int(re.search(r"worker \d+ sent (\d+) requests", log).group(1)) for log in logs]
    assert all(n > 0 for n in sent), logs
    assert _requests(tmp_path) >= 0.9 * sum(sent)
    assert any("p95 of all requests" in f for f in _failures(tmp_path / "junit.xml"))
    assert all(w.returncode == 0 for w in workers)


def test_fault_timeline_is_cleared_after_the_run(stack, admin, tmp_path) -> None:
    proc = _locust(
        stack, tmp_path,
        "--fault-timeline", "latency:validation-service:ms=20@1s;cpu_burn:query-service:ms=1@1s+1s",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("fault timeline: ") >= 4  # planned ×2, created ×2
    assert admin.faults() == []
    assert not list((stack.cfg.data_dir / "fault-state").glob("*.json"))


def test_fault_timeline_is_cleared_after_sigint(stack, admin, tmp_path) -> None:
    proc = subprocess.Popen(
        _base(stack, tmp_path, "--fault-timeline", "latency:validation-service:ms=20@0s")
        + ["--run-time", "60s"],
        cwd=REPO, env=_env(stack), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # The fault, then its crash record: the client writes the record once the gateway has
        # answered, so on a busy machine the fault can be listed a moment before it is on disk.
        deadline = time.monotonic() + 20
        state = stack.cfg.data_dir / "fault-state"
        while not admin.faults() or not list(state.glob("*.json")):
            assert time.monotonic() < deadline, "the timeline never created its fault and record"
            assert proc.poll() is None
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert admin.faults() == [], out[-2000:]
    assert not list((stack.cfg.data_dir / "fault-state").glob("*.json"))


def test_workshop_load_shows_the_run_at_80_columns(stack, tmp_path) -> None:
    """The command a CI job runs: a live table, the final one, the gate and the verdict line.
    (Its first live table, with no rows yet, used to crash the command before Locust began.)"""
    proc = workshop_cli(
        stack.cfg, "load", "smoke", "--duration", RUN, "--attendee", "load-test",
        "--reports", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    (report,) = tmp_path.iterdir()
    total = _requests(report)
    assert total > 10
    assert all(len(line) <= 80 for line in proc.stdout.splitlines())
    aggregated = next(line for line in proc.stdout.splitlines() if "Aggregated" in line)
    # The final table counts what the summary counts (its CSV used to be up to a second
    # behind: 287 in the table, 289 in the summary).
    assert int(aggregated.split("│")[3]) == total
    assert "SLO gate" in proc.stdout
    verdict = proc.stdout.split("SLO gate")[1]
    assert f"passed (exit 0) · {total} requests, 0 failed" in " ".join(verdict.split())


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--users", "0"), "--users: 0 users"),
        (("--duration", "0"), "--duration: '0' is under a second"),
        (("--duration", "abc"), "--duration: not a duration: 'abc'"),
        (("--processes", "-7"), "--processes: -7 is not a count"),
        (("--duration", "6s", "--classes", "Nobody"), "unknown user class Nobody"),
    ],
)
def test_workshop_load_refuses_what_locust_cannot_run(stack, tmp_path, args, named) -> None:
    """Refused before Locust starts: exit 2, the option and the fix named, no report folder.
    Locust itself would exit 2 with the reason only in its log, or, for `--duration 0`, run
    nothing and pass the gate."""
    proc = workshop_cli(stack.cfg, "load", "smoke", *args, "--reports", str(tmp_path))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert named in " ".join(proc.stdout.split())
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []
