"""The compose deployment, run for real on a Docker engine (`make test-docker`).

One compose project for the whole lane (session scope): the kit is copied to a scratch
directory like a new user's checkout, given a `.env`, nginx certificates and a test CA, built
one image at a time (scripts/compose-build.sh, as scripts/deploy-vm.sh does) and started with
`docker compose -f docker-compose.vm.yml -f tests/docker/compose.test.yml up -d`.
scripts/test-docker.sh starts the engine (scripts/docker-engine.sh), builds the stand-in base
images and compose, then runs this directory. Without an engine every test
FAILS with the reason: the compose deployment is never quietly skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "dataprime-workshop-test"
WORKDIR = Path(os.environ.get("WORKSHOP_DOCKER_TEST_DIR", "/tmp/workshop-kit-compose-test"))
HEALTH_TIMEOUT_S = 300
APP_SERVICES = [
    "api-gateway", "query-service", "validation-service", "queue-service", "processing-service",
    "storage-service", "queue-worker", "external-api-service", "frontend",
]  # fmt: skip
DEFAULT_SERVICES = ["otel-collector", "redis", "nginx", *APP_SERVICES]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: runs the compose deployment on a Docker engine")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


def run(cmd: list[str], *, timeout: float = 120, check: bool = True, **kw: Any):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def docker(*args: str, **kw: Any) -> subprocess.CompletedProcess:
    return run(["docker", *args], **kw)


def _engine() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(
            f"no Docker engine at {host}: {proc.stderr.strip()[:300]} — run `make test-docker` "
            "(it starts a private engine with scripts/docker-engine.sh)",
            pytrace=False,
        )
    return proc.stdout.strip()


def _compose_bin() -> str:
    explicit = os.environ.get("WORKSHOP_COMPOSE_BIN")
    if explicit:
        return explicit
    out = run(["bash", str(REPO / "scripts" / "build-compose.sh")], timeout=900).stdout
    return out.strip().splitlines()[-1]


def _copy_checkout(dest: Path) -> None:
    """The kit as a user gets it: tracked and new files, no .venv/bin/data/.git."""
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO).stdout
    for rel in filter(None, files.split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _sink_certs(conf: Path) -> None:
    """A test CA and a server certificate for *.sink.invalid (the sink's names)."""
    conf.mkdir(parents=True, exist_ok=True)
    if (conf / "sink.crt").exists():
        return
    o = ["openssl"]
    run([*o, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=workshop-kit test CA", "-keyout", str(conf / "ca.key"),
         "-out", str(conf / "ca.crt")])  # fmt: skip
    run([*o, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ingress.sink.invalid",
         "-keyout", str(conf / "sink.key"), "-out", str(conf / "sink.csr")])  # fmt: skip
    ext = conf / "san.ext"
    ext.write_text("subjectAltName=DNS:ingress.sink.invalid,DNS:*.sink.invalid\n")
    run([*o, "x509", "-req", "-in", str(conf / "sink.csr"), "-CA", str(conf / "ca.crt"),
         "-CAkey", str(conf / "ca.key"), "-CAcreateserial", "-days", "2",
         "-extfile", str(ext), "-out", str(conf / "sink.crt")])  # fmt: skip
    (conf / "sink.key").chmod(0o644)  # read by the sink container


@dataclass
class ComposeStack:
    compose_bin: str
    workdir: Path
    admin_token: str
    docker_host_name: str
    timings: dict[str, float] = field(default_factory=dict)
    # The `lab` profile (jupyter) and its test overlay are part of the project from the first
    # `up`: adding them later recreated services under the running tests (test_50_lab.py).
    extra_args: list[str] = field(
        default_factory=lambda: ["-f", str(HERE / "compose.lab-test.yml"), "--profile", "lab"]
    )

    @property
    def telemetry_dir(self) -> Path:
        """The collector's local copy of every signal (compose.lab-test.yml), read by the labs."""
        return self.workdir / "data" / "test-telemetry"

    @property
    def sink_out(self) -> Path:
        return self.workdir / "data" / "test-sink" / "out"

    def command(self) -> list[str]:
        """compose with this project's name, files and profile: add a subcommand to it."""
        return [self.compose_bin, "-p", PROJECT, "-f", "docker-compose.vm.yml",
                "-f", str(HERE / "compose.test.yml"), *self.extra_args]  # fmt: skip

    def compose(self, *args: str, timeout: float = 600, check: bool = True):
        return run([*self.command(), *args], cwd=self.workdir, timeout=timeout, check=check)

    def ps(self) -> list[dict[str, Any]]:
        out = self.compose("ps", "-a", "--format", "json").stdout.strip()
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip().splitlines()[0]

    def inspect(self, service: str) -> dict[str, Any]:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]

    def ip(self, service: str) -> str:
        nets = self.inspect(service)["NetworkSettings"]["Networks"]
        return next(iter(nets.values()))["IPAddress"]

    def gateway_url(self) -> str:
        """api-gateway on the Docker bridge (bypasses nginx's per-address rate limit)."""
        return f"http://{self.ip('api-gateway')}:8010"

    def wait_healthy(
        self, services: list[str], timeout: float = HEALTH_TIMEOUT_S
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while True:
            states = {}
            for c in self.ps():
                if c["Service"] in services:
                    health = c.get("Health") or ""
                    states[c["Service"]] = f"{c['State']}/{health}" if health else c["State"]
            ok = all(
                states.get(s) in ("running/healthy", "running")
                and (s in ("otel-collector", "sink") or states[s] == "running/healthy")
                for s in services
            )
            if ok:
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"not all running/healthy within {timeout:.0f} s: {states}")
            time.sleep(3)

    def https(self) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.workdir / "data" / "certs" / "server.crt"))
        return httpx.Client(base_url="https://127.0.0.1", verify=ctx, timeout=15)

    def direct(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.gateway_url(), timeout=15, **kw)

    def admin(self) -> httpx.Client:
        return self.direct(headers={"Authorization": f"Bearer {self.admin_token}"})


def ask_and_wait(client: httpx.Client, question: str, timeout: float = 90) -> dict[str, Any]:
    r = client.post("/api/queries", json={"question": question})
    assert r.status_code == 202, r.text
    return wait_done(client, r.json()["id"], timeout)


def wait_done(client: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/api/queries/{job_id}")
        if r.status_code == 200:
            body = r.json()
            if body.get("status") in ("done", "failed", "dead"):
                return body
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {body}")


def _write_env(workdir: Path, admin_token: str, sink_dir: Path) -> None:
    gid = run(["getent", "group", "docker"], check=False).stdout.split(":")
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    socket_path = docker_host.removeprefix("unix://")
    env = (REPO / "env.vm.example").read_text()
    values = {
        "CX_PRIVATE_KEY": "test-send-your-data-key",
        "ADMIN_TOKEN": admin_token,
        "CX_DOMAIN": "sink.invalid",
        "ATTENDEE_FAULTS": "true",
        "DOCKER_GID": gid[2] if len(gid) > 2 else "999",
        "JUPYTER_TOKEN": "test-jupyter-token",
        "HOSTMETRICS_INTERVAL": "5s",
        "HOSTMETRICS_PROCESS_INTERVAL": "5s",
    }
    lines = []
    for line in env.splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values.pop(name)}" if name in values else line)
    lines += [f"{k}={v}" for k, v in values.items()]
    # Not EC2: the ec2 detector would call the instance metadata address (as deploy-vm.sh does).
    lines += ['RESOURCE_DETECTORS="[env, docker, system]"',
              f"TEST_SINK_DIR={sink_dir}", f"TEST_DOCKER_SOCKET={socket_path}",
              f"TEST_TELEMETRY_DIR={workdir / 'data' / 'test-telemetry'}"]  # fmt: skip
    (workdir / ".env").write_text("\n".join(lines) + "\n")
    (workdir / ".env").chmod(0o600)


@pytest.fixture(scope="session")
def stack() -> Iterator[ComposeStack]:
    version = _engine()
    compose_bin = _compose_bin()
    WORKDIR.mkdir(parents=True, exist_ok=True)
    _copy_checkout(WORKDIR)
    sink_dir = WORKDIR / "data" / "test-sink"
    _sink_certs(sink_dir / "conf")
    shutil.copy2(HERE / "sink-config.yaml", sink_dir / "conf" / "config.yaml")
    out = sink_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    telemetry = WORKDIR / "data" / "test-telemetry"
    shutil.rmtree(telemetry, ignore_errors=True)
    telemetry.mkdir(parents=True)
    telemetry.chmod(0o777)  # written by the collector (uid 10001)
    run(["bash", str(REPO / "scripts" / "generate-certs.sh"), str(WORKDIR / "data" / "certs")])
    (WORKDIR / "data" / "nginx-auth").mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    _write_env(WORKDIR, token, sink_dir)
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)
    s = ComposeStack(compose_bin, WORKDIR, token, info["Name"])
    s.compose("down", "-v", "--remove-orphans", check=False)
    t0 = time.monotonic()
    # As scripts/deploy-vm.sh does: one image at a time (the script says why), then `up -d`.
    run(["bash", str(REPO / "scripts" / "compose-build.sh"), *s.command()], cwd=WORKDIR,
        timeout=1800)  # fmt: skip
    s.timings["build_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    s.compose("up", "-d", timeout=HEALTH_TIMEOUT_S + 60)
    left = max(10.0, HEALTH_TIMEOUT_S - (time.monotonic() - t0))
    s.wait_healthy([*DEFAULT_SERVICES, "sink", "jupyter"], timeout=left)
    s.timings["healthy_s"] = time.monotonic() - t0
    print(
        f"\ncompose stack on engine {version}: build {s.timings['build_s']:.0f} s, "
        f"up+healthy {s.timings['healthy_s']:.0f} s"
    )
    try:
        yield s
    finally:
        if os.environ.get("WORKSHOP_DOCKER_KEEP") != "1":
            logs = s.compose("logs", "--no-color", "--tail", "200", check=False).stdout
            (REPO / "reports").mkdir(exist_ok=True)
            (REPO / "reports" / "docker-compose-logs.txt").write_text(logs)
            s.compose("down", "-v", "--remove-orphans", timeout=300, check=False)


def host_name() -> str:
    return socket.gethostname()
