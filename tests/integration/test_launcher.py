"""`workshop up`/`down` on a small stack of its own: clear errors, nothing left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from stack.common.settings import ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError, Supervisor
from tests.conftest import test_config as stack_config

REPO = Path(__file__).resolve().parents[2]


def small_config(tmp_path: Path) -> NativeConfig:
    return stack_config(tmp_path / "data", offset=600)


def test_port_in_use_is_a_clear_error_naming_the_port(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    busy = cfg.service_port(ServiceName.VALIDATION)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", busy))
        sock.listen()
        with pytest.raises(LaunchError) as err:
            launcher.up(cfg, collector=False, nginx=False, services=[ServiceName.VALIDATION])
    assert f"port {busy} (validation-service) is already in use" in str(err.value)
    assert not Supervisor(cfg).running()


def test_cli_reports_the_busy_port_without_a_traceback(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cfg.redis_port))
        sock.listen()
        env = {
            **os.environ,
            **cfg.to_env(),
        }
        result = subprocess.run(
            [sys.executable, "-m", "workshop.cli", "up", "--no-collector", "--no-nginx"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=REPO,
        )
    assert result.returncode == 1
    assert f"port {cfg.redis_port} (redis-server) is already in use" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_down_leaves_nothing_running(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    result = launcher.up(
        cfg, collector=False, nginx=False, services=[ServiceName.VALIDATION, ServiceName.PROCESSING]
    )
    sup = Supervisor(cfg)
    pids = [sup.pid, *sup.child_pids()]
    assert len(pids) == 4 and all(pids)  # supervisord, redis, two services
    assert set(result.urls) == {"validation-service", "processing-service"}
    assert launcher.status(cfg)["validation-service"]["ready"] == "yes"
    assert launcher.down(cfg)
    alive = [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    assert not launcher.down(cfg)  # a second down is a no-op
