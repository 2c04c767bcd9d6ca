"""The budget bench's one-process experiment (workshop/bench_one_process.py): the host serves
several services from one process and stops on one SIGTERM; the costs it reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stack.common.settings import REPO_ROOT, ServiceName, Settings
from tests.helpers import eventually
from tests.unit.inprocess import free_port_base
from workshop import bench_one_process, bench_wakeup

HOSTED = [ServiceName.VALIDATION, ServiceName.PROCESSING]


def _health(url: str) -> dict[str, str] | None:
    try:
        return httpx.get(url + "/health", timeout=2).json()
    except httpx.TransportError:
        return None  # not listening yet


def test_the_host_serves_each_service_on_its_port_and_one_sigterm_stops_all(
    tmp_path: Path, routes_redis_url: str
) -> None:
    settings = Settings(port_base=free_port_base())
    env = {
        **os.environ,
        "WORKSHOP_PORT_BASE": str(settings.port_base),
        "WORKSHOP_DATA_DIR": str(tmp_path),
        "REDIS_URL": routes_redis_url,
        "OTEL_SDK_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",  # as supervisord starts the services: every line lands
    }
    log = tmp_path / "host.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workshop.bench_one_process", *HOSTED],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    urls = {s: f"http://127.0.0.1:{settings.port(s)}" for s in HOSTED}
    try:
        for service, url in urls.items():
            health = eventually(lambda url=url: _health(url), what=f"{service} answering")
            assert health["service"] == service.value
        answer = httpx.post(
            urls[ServiceName.VALIDATION] + "/validate",
            json={"query": "source logs | filter $m.severity == ERROR | limit 10"},
            timeout=5,
        )
        assert answer.status_code == 200 and answer.json()["valid"] is True
        assert proc.poll() is None  # one process answered for both
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal it captured once its server is down: the next server
        # stops, then the process ends by the signal, as `python -m stack.run` does.
        assert proc.wait(30) == -signal.SIGTERM
        assert log.read_text().count('"message":"service stopped"') == len(HOSTED)
        for url in urls.values():
            with pytest.raises(httpx.ConnectError):
                httpx.get(url + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_lab_costs_are_per_question_across_the_processes() -> None:
    def traffic() -> int:
        end = time.thread_time() + 0.1
        while time.thread_time() < end:
            pass
        for _ in range(40):
            time.sleep(0.001)
        return 10

    costs = bench_wakeup.lab_costs({"me": os.getpid(), "supervisord": os.getpid()}, traffic)
    assert costs["questions"] == 10
    assert costs["wakeups_per_question"] >= 4  # 40 sleeps over 10 questions; supervisord left out
    assert costs["wakeups_per_question"] < 8
    assert 9.5 <= costs["ms_per_question"] < 1000
    # per process too (bench_floor prices each one's wakeups): supervisord is not among them
    assert list(costs["per_process"]) == ["me"]
    assert abs(costs["per_process"]["me"]["wakeups"] - costs["wakeups_per_question"]) <= 0.05


def test_lab_costs_refuse_a_run_that_asked_nothing() -> None:
    with pytest.raises(RuntimeError, match="asked no question"):
        bench_wakeup.lab_costs({"me": os.getpid()}, lambda: 0)


def test_render_states_both_layouts_and_the_ratio() -> None:
    x = {
        "services": 8,
        "separate": {"wakeups_per_question": 32.0, "ms_per_question": 20.0, "questions": 400},
        "one": {"wakeups_per_question": 14.0, "ms_per_question": 13.0, "questions": 400},
    }
    text = "\n".join(bench_one_process.render(x))
    assert "| one process per service (as built) | 32.0 | 20.0 |" in text
    assert "| the same services in one process (experiment) | 14.0 | 13.0 |" in text
    assert "0.65× the CPU per question" in text
    assert "not a layout the kit" in text
