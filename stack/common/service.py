"""The one service factory: every service is `Service(name)` plus its own routes.

It wires settings, structured logging, telemetry, the shared HTTP client, Redis, the fault
engine, `/health` (liveness), `/ready` (own dependencies), problem-details errors, a body-size
cap, and an orderly shutdown that finishes in-flight work and flushes telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.types import ASGIApp

from stack.common.faults.engine import FaultEngine
from stack.common.faults.middleware import FaultMiddleware
from stack.common.faults.process import MemoryLeak, redis_delay
from stack.common.http import ServiceClient
from stack.common.json_route import JSONBodyRoute
from stack.common.limits import BodySizeLimit
from stack.common.logging import flush as flush_logs
from stack.common.logging import setup_logging
from stack.common.problems import Problem, install_problem_handlers
from stack.common.redis import create_redis, set_delay_hook
from stack.common.settings import ServiceName, Settings, get_settings
from stack.common.telemetry import (
    Telemetry,
    server_spans_layer,
    server_telemetry,
    setup_telemetry,
    untraced,
)

Hook = Callable[[], Awaitable[None]]
ReadyCheck = Callable[[], Awaitable[Any]]

log = logging.getLogger("stack.service")


def _log_crash(task: asyncio.Task[Any]) -> None:
    """A background loop that dies silently would look like a hang; say why it died."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=exc)


class _App(FastAPI):
    """FastAPI with an optional layer outside its whole middleware stack: where FastAPI's own
    telemetry sits, so the kit's SERVER spans (stack.common.server_spans) see what it sees."""

    outer_layer: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return self.outer_layer(stack) if self.outer_layer is not None else stack


class Service:
    def __init__(
        self,
        name: ServiceName,
        *,
        uses_redis: bool = False,
        title: str | None = None,
        settings: Settings | None = None,
        public_api: bool = False,
        redis: aioredis.Redis | None = None,
    ) -> None:
        """`redis`: a client to use instead of creating one (tests pass their own). The
        service closes on shutdown only a client it created; a passed one stays its owner's."""
        self.name = name
        self.settings = settings or get_settings()
        setup_logging(name.value, self.settings.log_level, self.settings.log_flush_ms / 1000)
        self.version = self.settings.service_version
        # Faults live in Redis; every service reads them, so every service holds a client.
        self._owns_redis = redis is None
        self._fault_redis = redis if redis is not None else create_redis(self.settings)
        self.redis: aioredis.Redis | None = self._fault_redis if uses_redis else None
        self.faults = FaultEngine(name, self._fault_redis, self.settings.fault_poll_seconds)
        self.memory_leak = MemoryLeak(self.faults)
        set_delay_hook(lambda: redis_delay(self.faults))
        # Telemetry is set up before the app is built: FastAPI's native tracing (configured
        # below) uses the global providers set here.
        self.version = self._startup_version()
        self.telemetry: Telemetry = setup_telemetry(name, self.settings, self.version)
        kit_spans = self.telemetry.enabled and self.settings.client_spans == "kit"
        self.http = ServiceClient(self.settings, traced=kit_spans)
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._ready: dict[str, ReadyCheck] = {}
        self.background: set[asyncio.Task[Any]] = set()
        if uses_redis:
            self.add_ready_check("redis", self._ping_redis)

        self.app = _App(
            title=title or name.value,
            version=self.version,
            lifespan=self._lifespan,
            # Internal services publish no docs; the public gateway serves them under /api.
            docs_url="/api/docs" if public_api else None,
            redoc_url=None,
            openapi_url="/api/openapi.json" if public_api else "/openapi.json",
            telemetry=server_telemetry(self.telemetry, self.settings),  # type: ignore[arg-type]
        )
        self.app.outer_layer = server_spans_layer(self.telemetry, self.settings)
        if self.settings.json_routes == "kit":
            self.app.router.route_class = JSONBodyRoute
        install_problem_handlers(self.app)
        self.app.add_middleware(FaultMiddleware, engine=self.faults)
        self.app.add_middleware(BodySizeLimit, max_bytes=self.settings.max_body_bytes)
        self._add_probes()

    # -- hooks --------------------------------------------------------------------------
    def on_startup(self, hook: Hook) -> Hook:
        self._startup.append(hook)
        return hook

    def on_shutdown(self, hook: Hook) -> Hook:
        self._shutdown.append(hook)
        return hook

    def add_ready_check(self, name: str, check: ReadyCheck) -> None:
        self._ready[name] = check

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        task.add_done_callback(_log_crash)
        return task

    # -- internals ----------------------------------------------------------------------
    async def _ping_redis(self) -> None:
        assert self.redis is not None
        # redis-py < 8 types asyncio commands `Awaitable[X] | X`, 8 `Awaitable[X]`: cast to what
        # checks under both (the reply is unused)
        await cast("Awaitable[object]", self.redis.ping())

    def _add_probes(self) -> None:
        @self.app.get("/health", include_in_schema=False)
        async def health() -> dict[str, str]:
            return {"status": "ok", "service": self.name.value, "version": self.version}

        @self.app.get("/ready", include_in_schema=False)
        async def ready() -> dict[str, Any]:
            checks: dict[str, str] = {}
            failed = []
            with untraced():
                for check_name, check in self._ready.items():
                    try:
                        await asyncio.wait_for(check(), timeout=2.0)
                        checks[check_name] = "ok"
                    except Exception as exc:
                        checks[check_name] = f"failed: {type(exc).__name__}"
                        failed.append(check_name)
            if failed:
                raise Problem(
                    503,
                    f"{self.name.value} is not ready: {', '.join(failed)} unavailable",
                    service=self.name.value,
                    slug="not-ready",
                )
            return {"status": "ready", "service": self.name.value, "checks": checks}

    async def _roll_release(self, faults: list[Any]) -> None:
        """A `bad_release` appearing or going away means a redeploy: restart as that version.

        The process exits gracefully; supervisord (or Docker's restart policy) brings it back
        and `_startup_version` picks the release from the fault state in Redis.
        """
        releases = [f for f in faults if f.kind == "bad_release" and f.active()]
        wanted = releases[0].params["version"] if releases else self.settings.service_version
        if wanted != self.version:
            log.warning(
                "redeploying as a new release",
                extra={"fields": {"from_version": self.version, "to_version": wanted}},
            )
            asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self.faults.on_change(self._roll_release)
        await self.faults.start()
        await self.http.start()
        for hook in self._startup:
            await hook()
        log.info("service started", extra={"fields": {"version": self.version}})
        try:
            yield
        finally:
            for hook in reversed(self._shutdown):
                with contextlib.suppress(Exception):
                    await hook()
            for task in list(self.background):
                task.cancel()
            await self.faults.stop()
            await self.memory_leak.release()
            await self.http.close()
            if self._owns_redis:
                with contextlib.suppress(Exception):
                    await self._fault_redis.aclose()
            log.info("service stopped")
            self.telemetry.shutdown()
            flush_logs()

    def _startup_version(self) -> str:
        """A `bad_release` fault on this service means it (re)starts as that release."""
        from stack.common.faults.store import bad_release_version

        try:
            return bad_release_version(self.settings.redis_url, self.name) or self.version
        except Exception:
            return self.version
