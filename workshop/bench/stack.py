"""The stacks under test: their processes, their idle footprint, a fresh data dir, and the
ceiling — a chain of bare uvicorn processes (workshop/bench_chain.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import typer

from stack.common.settings import REPO_ROOT
from stack.native.config import NativeConfig
from stack.native.supervisor import LaunchError, Supervisor, port_in_use
from workshop.bench.plan import PYTHON_SERVICES, chain_ports
from workshop.bench.sampler import Sampler


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
