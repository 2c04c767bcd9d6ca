"""Collector fixtures: build the binary once per session, start/stop collector processes.

Every process started here listens on 127.0.0.1 in TEST_PORT_BASE+700..+799 (24300-24399 when
TEST_PORT_BASE is unset) and writes to tmp dirs, so it never collides with a developer's stack
(4317/4318/13133, 8010-8020) nor with another engineer's test run on another base. Processes
are always terminated by fixture finalizers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from stack.native.collector import BUILD_SCRIPT, REPO_ROOT, collector_binary

COLLECTOR_DIR = REPO_ROOT / "collector"
CONFIG = COLLECTOR_DIR / "config.yaml"
OFFLINE = COLLECTOR_DIR / "offline.yaml"
LOOPBACK = COLLECTOR_DIR / "test" / "loopback.yaml"
TO_SINK = COLLECTOR_DIR / "test" / "to-sink.yaml"
SINK = COLLECTOR_DIR / "test" / "coralogix-sink.yaml"


def port(n: int) -> int:
    """The n-th (0-99) loopback port of the collector tests."""
    return int(os.environ.get("TEST_PORT_BASE", "23600")) + 700 + n


def _go_available() -> bool:
    return shutil.which("go") is not None or Path("/usr/local/go/bin/go").exists()


@pytest.fixture(scope="session")
def otelcol() -> Path:
    """The built collector binary (scripts/build-collector.sh; a no-op when up to date)."""
    in_ci = os.environ.get("CI") == "true"
    if not _go_available() and not (collector_binary().exists() and not in_ci):
        reason = "Go is not installed: cannot build the collector (apt-get install golang / go.dev)"
        if in_ci:
            pytest.fail(reason)
        pytest.skip(reason)
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=1800)
    if proc.returncode == 2 and not in_ci:
        pytest.skip(f"collector build needs Go: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"collector build failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
    binary = collector_binary()
    assert binary.exists(), proc.stdout
    return binary


def base_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no inherited OTEL_*/CX_* variables leak into the collector."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "CX_", "OTLP_", "COLLECTOR_", "HOSTMETRICS_", "RESOURCE_"))
        and k != "TELEMETRY_DIR"
    }
    env.update(extra)
    return env


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"collector exited rc={proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(
        f"collector not healthy on :{port} after {timeout}s:\n{log.read_text()[-4000:]}"
    )


StartCollector = Callable[[list[Path], Mapping[str, str], int, str], subprocess.Popen]


@pytest.fixture
def start_collector(otelcol: Path, tmp_path: Path) -> Iterator[StartCollector]:
    """start(configs, env, health_port, name) -> Popen; all are terminated at teardown."""
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(
        configs: list[Path], env: Mapping[str, str], health_port: int, name: str
    ) -> subprocess.Popen:
        log = tmp_path / f"{name}.log"
        cmd = [str(otelcol)]
        for c in configs:
            cmd += ["--config", str(c)]
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd, env=dict(env), stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path
            )
        procs.append((proc, log))
        wait_healthy(health_port, proc, log)
        proc.log_path = log  # type: ignore[attr-defined]
        return proc

    yield start
    for proc, _log in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
