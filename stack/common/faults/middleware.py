"""Applies request-level faults (latency, error, timeout, cpu_burn) to a service's routes.

Pure ASGI rather than BaseHTTPMiddleware: it runs on every request and must cost microseconds
when no fault is active.
"""

from __future__ import annotations

import asyncio
import random
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from stack.common.faults.engine import FaultEngine, mark_span, request_baggage
from stack.common.problems import Problem, problem_response
from stack.common.telemetry import NOT_TRACED_PREFIXES

UNFAULTED_PATHS = frozenset({"/health", "/ready"})
# The UI's telemetry views keep answering while the gateway is faulted: they show the fault.
UNFAULTED_PREFIXES = NOT_TRACED_PREFIXES


def burn_cpu(ms: float) -> None:
    """Real CPU work (not sleep) so host metrics and process CPU time show it."""
    deadline = time.process_time() + ms / 1000
    x = 0
    while time.process_time() < deadline:
        for i in range(1000):
            x += i * i


class FaultMiddleware:
    def __init__(self, app: ASGIApp, engine: FaultEngine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in UNFAULTED_PATHS
            or scope["path"].startswith(UNFAULTED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope.get("headers", ()):
            if name == b"baggage":
                header = value.decode("latin-1")
                break
        token = request_baggage.set(header)
        try:
            if self.engine.faults and await self._inject(scope, receive, send, header):
                return
            await self.app(scope, receive, send)
        finally:
            request_baggage.reset(token)

    async def _inject(self, scope: Scope, receive: Receive, send: Send, header: str) -> bool:
        """Apply active faults; True when the fault answered the request itself."""
        engine = self.engine
        if fault := engine.firing("latency", header):
            mark_span(fault)
            jitter = fault.params["jitter_ms"]
            await asyncio.sleep((fault.params["ms"] + random.uniform(0, jitter)) / 1000)
        if fault := engine.firing("cpu_burn", header):
            mark_span(fault)
            burn_cpu(fault.params["ms"])
        if fault := engine.firing("timeout", header):
            mark_span(fault)
            await asyncio.sleep(fault.params["hang_ms"] / 1000)
        if fault := engine.firing("error", header):
            mark_span(fault)
            status = fault.params["status"]
            problem = Problem(
                status,
                f"{engine.service.value} failed (injected fault {fault.id})",
                service=engine.service.value,
                slug="injected-fault",
            )
            await problem_response(problem)(scope, receive, send)
            return True
        return False
