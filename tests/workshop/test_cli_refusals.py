"""What the CLI refuses, and how it stops. Commands that need the gateway, run while nothing
answers at its URL: one line with the reason and the fix, at once (`lab run` used to send 30 s
of traffic that all failed and then look finished; `load` ran Locust's whole duration into a
breached gate; `fault list` printed urllib3's nested exception reprs). Options that would run
nothing. SIGTERM, which used to leave a command's Locust (or stacks) running."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from stack.client import failure_reason, unreachable
from stack.native.config import NativeConfig
from tests.helpers import REPO, workshop_cli


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _cli(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    """`workshop ARGS` (tests.helpers.workshop_cli) with its gateway on the closed port."""
    port = url.rsplit(":", 1)[1]  # the gateway is the base port
    cfg = NativeConfig.from_env({"WORKSHOP_DATA_DIR": str(tmp_path), "WORKSHOP_PORT_BASE": port})
    return workshop_cli(cfg, *args, LAB_GATEWAY_URL=url, ADMIN_TOKEN="t" * 32)


def test_the_reason_is_a_few_words(closed_url) -> None:
    assert unreachable(closed_url) == "connection refused"
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(closed_url, timeout=2)
    assert failure_reason(info.value) == "connection refused"
    assert failure_reason(requests.ReadTimeout("Read timed out.")) == "timed out"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("lab", "run", "00"), "nothing answers at {url} (connection refused)"),
        (("load", "smoke"), "nothing answers at {url} (connection refused)"),
        (("fault", "list"), "the gateway at {url} is not reachable (connection refused)"),
    ],
)
def test_a_command_without_a_gateway_says_so_at_once(tmp_path, closed_url, args, said) -> None:
    started = time.monotonic()
    proc = _cli(tmp_path, closed_url, *args)
    out = " ".join(proc.stdout.split())
    assert proc.returncode in (1, 2), out
    assert "error: " + said.format(url=closed_url) in out, out
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "Errno" not in out and "HTTPConnection" not in out
    assert time.monotonic() - started < 20  # not a lab's or a scenario's whole run


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--users", "0"), "--users: 0 users send nothing"),
        (("--users", "-3"), "--users: -3 users send nothing"),
        (("--duration", "0"), "--duration: 0.0 s runs nothing"),
    ],
)
def test_lab_run_refuses_an_override_that_runs_nothing(tmp_path, closed_url, args, said) -> None:
    """Refused before the gateway is even asked (0 users used to mean the spec's; -3 ran
    no user for the lab's whole duration)."""
    proc = _cli(tmp_path, closed_url, "lab", "run", "00", *args)
    out = " ".join(proc.stdout.split())
    assert proc.returncode == 2 and f"error: {said}" in out, out


@pytest.mark.parametrize(
    ("users", "duration", "said"),
    [
        ("0,10", None, "--users: every level is ≥ 1, not 0"),
        (None, 0.0, "--duration: seconds per level, more than 0, not 0.0"),
        (None, -1.0, "--duration: seconds per level, more than 0, not -1.0"),
    ],
)
def test_bench_refuses_levels_and_durations_that_measure_nothing(users, duration, said) -> None:
    """`workshop bench --duration 0` used to start three stacks and run."""
    import typer

    from workshop.bench.plan import make_plan

    with pytest.raises(typer.BadParameter, match=said):
        make_plan(False, users, duration)


@pytest.fixture
def any_http_server():
    """Something that answers HTTP (404 to everything): enough for `workshop load` to start."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_sigterm_stops_workshop_load_the_way_ctrl_c_does(tmp_path, any_http_server) -> None:
    """`timeout`, a cancelled CI job or `kill` sends SIGTERM: the command used to die at once
    and leave its Locust process running; now it stops Locust and says so, as on Ctrl-C."""
    import psutil

    env = {**os.environ, "COLUMNS": "80", "WORKSHOP_DATA_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "workshop.cli", "load", "smoke", "--duration", "60s"]
    cmd += ["--host", any_http_server, "--reports", str(tmp_path / "reports")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        locust: list[psutil.Process] = []
        while not locust and time.monotonic() < deadline:
            time.sleep(0.5)
            kids = psutil.Process(proc.pid).children(recursive=True)
            locust = [p for p in kids if "locust" in " ".join(p.cmdline())]
        assert locust, "Locust never started"
        time.sleep(3)  # running, its users sending
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted: Locust stopped" in out
    gone, alive = psutil.wait_procs(locust, timeout=10)
    for orphan in alive:  # (what the old command left behind)
        orphan.kill()
    assert not alive, "Locust outlived the command"
