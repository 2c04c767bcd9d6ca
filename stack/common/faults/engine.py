"""The per-process view of active faults: kept from Redis, matched per request, applied.

The set is reloaded when the store publishes a change (store.CHANNEL), when a fault reaches
its expiry, and every `poll_seconds` as a safety net for a message lost in a reconnect.

Every service runs one FaultEngine. Request-level kinds are applied by FaultMiddleware (or by
the service's own code for kinds only it can express, such as llm_rate_limit or queue_stall);
process-level kinds (memory_leak, slow_db, bad_release) run through on_change handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import unquote

import redis.asyncio as aioredis
from opentelemetry import trace

from stack.common.faults import store
from stack.common.faults.model import Fault
from stack.common.settings import ServiceName
from stack.common.telemetry import meter, untraced

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger("stack.faults")

# The caller's identity for scope matching, parsed from the W3C baggage header. Kept in a
# context variable so it also reaches code paths without OpenTelemetry (OTEL_SDK_DISABLED).
request_baggage: ContextVar[str] = ContextVar("request_baggage", default="")

ChangeHandler = Callable[[list[Fault]], Awaitable[None] | None]


def parse_baggage(header: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if sep:
            entries[key.strip()] = unquote(value.split(";", 1)[0].strip())
    return entries


def identity(header: str | None = None) -> tuple[str | None, str | None]:
    bag = parse_baggage(header if header is not None else request_baggage.get())
    return bag.get("workshop.attendee"), bag.get("workshop.session")


def mark_span(fault: Fault) -> None:
    """The proof a learner looks for: a `fault.injected` event on the span the fault touched."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(
            "fault.injected",
            {"fault.id": fault.id, "fault.kind": fault.kind, "fault.target": fault.target},
        )


class FaultEngine:
    def __init__(self, service: ServiceName, redis: aioredis.Redis | None, poll_seconds: float):
        self.service = service
        self.redis = redis
        self.poll_seconds = poll_seconds
        self.faults: list[Fault] = []
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._refreshing = asyncio.Lock()  # the watcher and the poller never apply at once
        self._rearm = asyncio.Event()  # the set changed: the poller's next wake may be sooner
        self._handlers: list[ChangeHandler] = []
        self._random = random.Random()
        self._gauge_values: dict[str, int] = {}
        meter("stack.faults").create_observable_gauge(
            "workshop.faults.active",
            callbacks=[self._observe],
            description="Active faults targeting this service, by kind",
        )

    def _observe(self, _options: CallbackOptions) -> list[Observation]:
        from opentelemetry.metrics import Observation

        counts: dict[str, int] = {}
        for fault in self.faults:
            if fault.active():
                counts[fault.kind] = counts.get(fault.kind, 0) + 1
        return [Observation(n, {"fault.kind": k}) for k, n in counts.items()]

    def on_change(self, handler: ChangeHandler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        if self.redis is None:
            return
        with contextlib.suppress(Exception):
            await self.refresh(force=True)
        self._task = asyncio.create_task(self._poll(), name="fault-poller")
        self._watch_task = asyncio.create_task(self._watch(), name="fault-watcher")

    async def stop(self) -> None:
        for task in (self._task, self._watch_task):
            # redis-py can swallow a cancellation that lands in a blocking pub/sub read (it
            # reconnects and reads on), which hung shutdown: cancel until the task has ended.
            while task and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)

    def _next_wake(self) -> float:
        """Seconds until the next poll: the safety interval, or sooner if a fault expires."""
        now = time.time()
        expiries = [f.expires_at - now for f in self.faults if f.expires_at]
        return max(0.05, min([self.poll_seconds, *expiries]))

    async def _poll(self) -> None:
        while True:
            # A fault that arrives over pub/sub while the poller sleeps may expire before the
            # safety interval ends: its arrival re-arms the sleep to its expiry.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rearm.wait(), self._next_wake())
            if self._rearm.is_set():
                self._rearm.clear()
                continue
            try:
                await self.refresh()
            except Exception as exc:
                log.debug("fault refresh failed: %s", exc)

    async def _watch(self) -> None:
        """Reload as soon as the store publishes a change; reconnect after Redis restarts."""
        assert self.redis is not None
        while True:
            try:
                with untraced():
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    try:
                        await pubsub.subscribe(store.CHANNEL)
                        # A change made while we were (re)subscribing is not lost.
                        await self.refresh()
                        async for message in pubsub.listen():
                            if message.get("type") == "message":
                                await self.refresh()
                    finally:
                        with contextlib.suppress(Exception):
                            # redis's PubSub.aclose has no annotations
                            await pubsub.aclose()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("fault watch reconnecting: %s", exc)
                await asyncio.sleep(1.0)

    async def refresh(self, *, force: bool = False) -> None:
        async with self._refreshing:
            await self._refresh(force=force)

    async def _refresh(self, *, force: bool) -> None:
        assert self.redis is not None
        with untraced():
            current = await store.version(self.redis)
            expired = any(not f.active() for f in self.faults)
            if not force and current == self._version and not expired:
                return
            faults = [f for f in await store.list_faults(self.redis) if f.target == self.service]
        self._version = current
        await self._apply(faults)

    async def _apply(self, faults: list[Fault]) -> None:
        before = {f.id: f for f in self.faults}
        after = {f.id: f for f in faults}
        for fid, fault in after.items():
            if fid not in before:
                log.info(
                    "fault started",
                    extra={
                        "fields": {
                            "fault.id": fid,
                            "fault.kind": fault.kind,
                            "fault.scope": fault.scope,
                        }
                    },
                )
        for fid, fault in before.items():
            if fid not in after:
                how = "expired" if not fault.active() else "cleared"
                log.info(
                    f"fault {how}", extra={"fields": {"fault.id": fid, "fault.kind": fault.kind}}
                )
        self.faults = faults
        self._rearm.set()
        if before.keys() != after.keys():
            for handler in self._handlers:
                result = handler(faults)
                if asyncio.iscoroutine(result):
                    await result

    def active(self, kind: str) -> list[Fault]:
        now = time.time()
        return [f for f in self.faults if f.kind == kind and f.active(now)]

    def firing(self, kind: str, header: str | None = None) -> Fault | None:
        """The first active fault of `kind` that matches the caller and wins its dice roll."""
        faults = self.active(kind)
        if not faults:
            return None
        attendee, session = identity(header)
        for fault in faults:
            if fault.matches(attendee, session) and (
                fault.probability >= 1.0 or self._random.random() < fault.probability
            ):
                return fault
        return None
