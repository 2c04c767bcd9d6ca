"""Small helpers shared by tests that drive the native stack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from stack.common.procs import stop
from stack.native.config import NativeConfig
from stack.native.supervisor import Supervisor

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]


def workshop_cli(cfg: NativeConfig, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`workshop ARGS` against a test stack at 80 columns (what a terminal, or a CI log, gives
    by default), with no Coralogix settings but `env`."""
    run_env = {**os.environ, **cfg.to_env(), "COLUMNS": "80"}
    for key in ("CX_PRIVATE_KEY", "CX_API_KEY", "CX_TEAM_URL", "CX_TEAM_NAME"):
        run_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "workshop.cli", *args],
        cwd=REPO,
        env=run_env | env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def questions() -> list[str]:
    lines = (REPO / "scenarios" / "questions.txt").read_text().splitlines()
    return [q.strip() for q in lines if q.strip() and not q.startswith("#")]


def eventually(
    check: Callable[[], T], timeout: float = 30, interval: float = 0.2, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s (last: {last!r})")


async def submit_many(
    base_url: str,
    texts: Iterable[str],
    concurrency: int = 20,
    headers: dict[str, str] | None = None,
) -> list[tuple[int, dict]]:
    """POST /api/queries for every text with bounded concurrency; (status, body) each."""
    sem = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers or {}) as session:

        async def one(text: str) -> tuple[int, dict]:
            async with (
                sem,
                session.post(f"{base_url}/api/queries", json={"question": text}) as resp,
            ):
                return resp.status, await resp.json(content_type=None)

        return await asyncio.gather(*(one(t) for t in texts))


def stored_job_ids(cfg: NativeConfig) -> dict[str, int]:
    """job_id → number of rows, read straight from the SQLite file (read-only)."""
    conn = sqlite3.connect(f"file:{cfg.data_dir / 'feedback.db'}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT job_id, count(*) FROM jobs GROUP BY job_id").fetchall())
    finally:
        conn.close()


def kill_program(cfg: NativeConfig, name: str, sig: int = signal.SIGKILL) -> int:
    pid = Supervisor(cfg).program_pid(name)
    assert pid, f"{name} is not running"
    os.kill(pid, sig)
    return pid


def wait_program_running(
    cfg: NativeConfig, name: str, old_pid: int | None = None, timeout: float = 30
) -> int:
    sup = Supervisor(cfg)

    def check() -> int | None:
        pid = sup.program_pid(name)
        return pid if pid and pid != old_pid and sup.status().get(name) == "RUNNING" else None

    return eventually(check, timeout, what=f"{name} running again")


@contextlib.contextmanager
def redis_server(port: int, directory: Path) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1:``port`` (no persistence); yields its URL once it
    answers PING, and stops it on exit. Skips the test when redis-server is not installed."""
    import shutil
    import subprocess

    import pytest
    import redis as redis_lib

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_lib.Redis.from_url(url).ping()
                break
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield url
    finally:
        stop(proc, 10)
