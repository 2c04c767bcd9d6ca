"""In-process route tests (tests/unit/test_routes_*.py): each service's `create_app` served
through httpx's ASGI transport with its lifespan run, against a real redis-server (one per
session, on a free loopback port, no persistence) and a real SQLite file in the test's
tmp_path. Telemetry is off (`otel_sdk_disabled`) and its endpoint is an unused loopback port,
so nothing leaves the machine. No live-stack fixture is used: these run in `make test-unit`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from stack.common.settings import Settings
from tests.helpers import redis_server
from tests.unit.inprocess import free_port, free_port_base


@pytest.fixture(scope="session")
def routes_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(free_port(), tmp_path_factory.mktemp("routes-redis")) as url:
        yield url


@pytest.fixture()
def route_settings(tmp_path: Path, routes_redis_url: str) -> Settings:
    """Settings for one test: an empty Redis, a data dir (SQLite) of its own, no telemetry."""
    sync_redis.Redis.from_url(routes_redis_url).flushdb()
    return Settings(
        data_dir=tmp_path,
        redis_url=routes_redis_url,
        port_base=free_port_base(),
        otel_sdk_disabled=True,
        otlp_endpoint=f"http://127.0.0.1:{free_port()}",
        log_level="WARNING",
        fault_poll_seconds=1.0,
    )


@pytest.fixture()
def traced_spans(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Telemetry on for the apps a test builds, its spans kept in memory (nothing exported):
    the global tracer provider is an in-memory one and services see telemetry enabled."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from stack.common import service as service_module
    from stack.common.telemetry import Telemetry

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    monkeypatch.setattr(
        service_module, "setup_telemetry", lambda name, *_: Telemetry(name, enabled=True)
    )
    return memory
