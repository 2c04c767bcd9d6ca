"""Shared fixtures. `stack` starts ONE real native stack per test session (real redis-server,
real collector when built, real service processes under supervisord) on ports derived from
TEST_PORT_BASE (default 18000) in a temporary data directory, so it never collides with a
developer's own `workshop up` on the default ports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.client import Gateway
from stack.common.settings import ServiceName
from stack.native import launcher
from stack.native.config import NativeConfig

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"


def port_base() -> int:
    """TEST_PORT_BASE, or its declared default (stack/common/envvars.py)."""
    return int(os.environ.get("TEST_PORT_BASE", "18000"))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker runs its own stack: worker gwN's TEST_PORT_BASE is the
    base + 1000·N (a stack, its second stacks at +500/+600 and the hub fit in 1000 ports), so
    its data directory differs too. Up to 8 workers stay below tests/unit/inprocess.py's
    27000-32700 range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw"):
        os.environ["TEST_PORT_BASE"] = str(port_base() + 1000 * int(worker[2:]))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With PYTEST_FAILED_FILE set, the node id of every failed test goes there, one a line:
    scripts/run-tests.sh reruns exactly those on one worker (pytest's own --last-failed needs
    the cache, which addopts turns off)."""
    path = os.environ.get("PYTEST_FAILED_FILE")
    if path and report.failed and "PYTEST_XDIST_WORKER" not in os.environ:
        with open(path, "a", encoding="utf-8") as out:
            out.write(report.nodeid + "\n")


def test_config(data_dir: Path, offset: int = 0) -> NativeConfig:
    """A stack on ports derived from TEST_PORT_BASE (+ offset for a second, separate stack)."""
    base = port_base()
    cfg = NativeConfig(
        data_dir=data_dir,
        port_base=base + 10,
        redis_port=base + 379,
        otlp_grpc_port=base + 317,
        otlp_http_port=base + 318,
        collector_health_port=base + 133,
        nginx_http_port=base + 80,
        nginx_https_port=base + 443,
        extra_env={
            # Fast enough for tests to see a crashed worker's jobs reclaimed.
            "WORKER_CLAIM_IDLE_MS": "3000",
            "OTEL_METRIC_EXPORT_INTERVAL": "2000",
            # Short-mode labs (lab 05: a 6 s baseline) need several host-metric samples per window.
            "HOSTMETRICS_INTERVAL": "2s",
            "HOSTMETRICS_PROCESS_INTERVAL": "2s",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_BLRP_SCHEDULE_DELAY": "500",
            "SHUTDOWN_GRACE_SECONDS": "8",
        },
    )
    return cfg.shifted(offset)


def collector_built() -> bool:
    try:
        from stack.native.collector import collector_binary
    except ImportError:
        return False
    return collector_binary().exists()


@dataclass
class StackHandle:
    cfg: NativeConfig
    collector: bool
    nginx: bool

    def gateway(self, **kw: object) -> Gateway:
        return Gateway.for_native(self.cfg, **kw)

    def url(self, service: ServiceName) -> str:
        return self.cfg.url(service)

    @property
    def admin_token(self) -> str:
        return self.cfg.admin_token_file.read_text().strip()

    @property
    def telemetry_dir(self) -> Path:
        return self.cfg.telemetry_dir

    @property
    def redis_url(self) -> str:
        return self.cfg.redis_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`stack` marks every test that needs the live native stack, by its fixtures (directly
    or through another fixture), so `make test-unit` (-m "not stack") can leave them out."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(autouse=True)
def _no_environment_leaks() -> Iterator[None]:
    """Whatever a test (or the code it runs) puts into os.environ goes when it ends: a leaked
    OTEL_SDK_DISABLED once silenced the doctor and every stack started after it."""
    before = dict(os.environ)
    yield
    if os.environ != before:
        os.environ.clear()
        os.environ.update(before)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    # Under data/ (ignored by git) rather than a pytest tmp dir: the logs outlive the run
    # for whoever has to read why a test failed.
    base = port_base()
    data_dir = REPO / "data" / f"test-stack-{base}"
    cfg = test_config(data_dir)
    launcher.down(cfg)  # a stack left over by an interrupted run
    shutil.rmtree(data_dir, ignore_errors=True)
    with_collector = collector_built()
    if IN_CI and not with_collector:
        pytest.fail("CI must build the collector first (`make collector`)")
    nginx = shutil.which("nginx") is not None and _nginx_supported()
    result = launcher.up(cfg, collector=with_collector, nginx=nginx or False, timeout=90)
    try:
        yield StackHandle(cfg, result.collector, result.nginx)
    finally:
        launcher.down(cfg)


def _nginx_supported() -> bool:
    try:
        from stack.native import nginx  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture()
def gateway(stack: StackHandle) -> Gateway:
    return stack.gateway()


@pytest.fixture()
def admin(stack: StackHandle) -> Gateway:
    return stack.gateway(admin_token=stack.admin_token)
