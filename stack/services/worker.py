"""queue-worker: consumes `stream:jobs` in group `workers` — processing → storage → XACK.

At-least-once with idempotent storage: an entry is acknowledged only after storage confirmed
it, so a crash (even SIGKILL) leaves it pending; on restart this consumer re-reads its own
pending entries and XAUTOCLAIM takes over entries idle past WORKER_CLAIM_IDLE_MS from any
consumer. Failures are retried with backoff; past WORKER_MAX_ATTEMPTS deliveries the job goes
to `stream:jobs:dead` with its reason. SIGTERM stops reading and drains in-flight jobs.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry import context

from stack.common.faults import mark_span
from stack.common.problems import Problem
from stack.common.redis import (
    DEAD_STREAM,
    GROUP,
    JOB_PREFIX,
    STREAM,
    Entry,
    PendingEntries,
    create_redis,
)
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.common.streams import ensure_group, stream_stats
from stack.common.telemetry import (
    SpanKind,
    current_trace_id,
    extract_context,
    meter,
    record_error,
    tracer,
    untraced,
)

log = logging.getLogger("stack.worker")


class Permanent(Exception):
    """A failure retrying cannot fix (the query itself is bad)."""


class Worker:
    """The consumer: one per app, its state (in-flight jobs, counts, stop flag) its own."""

    def __init__(self, service: Service) -> None:
        assert service.redis is not None
        self.service = service
        self.settings = service.settings
        self.redis: aioredis.Redis = service.redis
        # The stream read blocks for WORKER_BLOCK_MS, so it gets a client of its own: a reply
        # timeout longer than the block, and no retries. With the shared client's (5 s, eight
        # retries) an idle read timed out at its block's end and redis-py sent it again on a
        # new connection, and again: one call that never came back to the pause gate below, so
        # a queue_stall pause let the next job through, and after a Redis restart the retried
        # read took entries a paused worker must leave in the stream. Errors come back here.
        self.reader: aioredis.Redis = create_redis(
            self.settings, socket_timeout=self.settings.worker_block_ms / 1000 + 5, retries=0
        )
        self._consuming: asyncio.Task[None] | None = None
        self.consumer = self.settings.worker_consumer or f"worker-{socket.gethostname()}"
        _meter = meter("stack.worker")
        self.jobs_processed = _meter.create_counter(
            "workshop.jobs.processed", description="Jobs stored"
        )
        self.jobs_failed = _meter.create_counter(
            "workshop.jobs.failed", description="Job attempts failed"
        )
        self.jobs_dead = _meter.create_counter(
            "workshop.jobs.dead_lettered", description="Jobs dead-lettered"
        )
        self.job_latency = _meter.create_histogram(
            "workshop.job.duration", unit="ms", description="Job latency from enqueue to stored"
        )
        self.stopping = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        self.semaphore = asyncio.Semaphore(self.settings.worker_concurrency)
        self.counts = {"processed": 0, "failed_attempts": 0, "dead": 0, "claimed": 0}

    async def startup(self) -> None:
        with untraced():
            await ensure_group(self.redis)
        self._consuming = self.service.spawn(self._consume(), "consume")
        self.service.spawn(self._reclaim(), "reclaim")

    async def drain(self) -> None:
        self.stopping.set()
        # Stop reading first: a read cut short leaves what it got pending for this consumer,
        # whose next life reads its own pending entries before new ones.
        if self._consuming is not None:
            self._consuming.cancel()
            await asyncio.wait({self._consuming})
        if self.inflight:
            log.info("draining in-flight jobs", extra={"fields": {"jobs": len(self.inflight)}})
            await asyncio.wait(self.inflight, timeout=self.settings.shutdown_grace_seconds)
        await self.reader.aclose()

    async def stats(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "inflight": len(self.inflight),
            **self.counts,
            **await stream_stats(self.redis),
        }

    async def _stall_gate(self) -> None:
        """queue_stall in pause mode: stop taking new work while the fault is active."""
        faults = self.service.faults
        while faults.active("queue_stall") and any(
            f.params["mode"] == "pause" for f in faults.active("queue_stall")
        ):
            if self.stopping.is_set():
                return
            await asyncio.sleep(0.2)

    async def _consume(self) -> None:
        # First our own pending entries (a previous life of this consumer died holding them),
        # then new ones (">").
        settings, redis = self.settings, self.redis
        cursor, backlog = "0", True
        while not self.stopping.is_set():
            await self._stall_gate()
            free = settings.worker_concurrency - len(self.inflight)
            if free <= 0:
                await asyncio.sleep(0.005)
                continue
            try:
                with untraced():
                    answer = await self.reader.xreadgroup(
                        GROUP,
                        self.consumer,
                        {STREAM: cursor},
                        count=min(free, settings.worker_batch),
                        block=None if backlog else settings.worker_block_ms,
                    )
            except Exception as exc:
                if "NOGROUP" in str(exc):
                    with untraced():
                        await ensure_group(redis)
                log.warning("stream read failed", extra={"fields": {"error": str(exc)[:200]}})
                await asyncio.sleep(0.5)
                continue
            # RESP2 reply: [[stream, entries]], or empty when nothing arrived.
            entries: PendingEntries = cast("list[list[Any]]", answer)[0][1] if answer else []
            if backlog:
                if not entries:
                    cursor, backlog = ">", False
                    continue
                cursor = entries[-1][0]  # continue through our pending list
            if entries:
                # A pause that arrived while the read was waiting: what it brought waits too.
                await self._stall_gate()
                if self.stopping.is_set():
                    return  # left pending: this consumer's next life reads them first
            for message_id, fields in entries:
                if not fields:  # trimmed away while pending
                    with untraced():
                        await redis.xack(STREAM, GROUP, message_id)
                    continue
                self._start(message_id, fields)

    def _start(self, message_id: str, fields: dict[str, str], deliveries: int = 1) -> None:
        task = asyncio.create_task(self._handle(message_id, fields, deliveries))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _reclaim(self) -> None:
        """XAUTOCLAIM entries idle too long (their consumer crashed or hangs)."""
        settings, redis = self.settings, self.redis
        while not self.stopping.is_set():
            await asyncio.sleep(min(5.0, settings.worker_claim_idle_ms / 2000))
            if self.service.faults.active("queue_stall"):
                continue
            try:
                with untraced():
                    _next, claimed, _deleted = await redis.xautoclaim(
                        STREAM,
                        GROUP,
                        self.consumer,
                        min_idle_time=settings.worker_claim_idle_ms,
                        start_id="0-0",
                        count=50,
                    )
                    if not claimed:
                        continue
                    pending = await redis.xpending_range(
                        STREAM,
                        GROUP,
                        min=claimed[0][0],
                        max=claimed[-1][0],
                        count=len(claimed) + 50,
                    )
            except Exception as exc:
                log.warning("reclaim failed", extra={"fields": {"error": str(exc)[:200]}})
                continue
            deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
            for message_id, fields in claimed:
                if any(t.get_name() == message_id for t in self.inflight):
                    continue
                self.counts["claimed"] += 1
                if fields:
                    self._start(message_id, fields, deliveries.get(message_id, 2))
                else:
                    with untraced():
                        await redis.xack(STREAM, GROUP, message_id)

    async def _handle(self, message_id: str, fields: dict[str, str], deliveries: int) -> None:
        asyncio.current_task().set_name(message_id)  # type: ignore[union-attr]
        async with self.semaphore:
            job = orjson.loads(fields["payload"])
            # Attach the producer's context (trace + baggage), so the consumer span and every
            # span under it carry the attendee/session baggage like any other hop.
            token = context.attach(extract_context(fields))
            try:
                with tracer("stack.worker").start_as_current_span(
                    f"process {STREAM}", kind=SpanKind.CONSUMER
                ) as span:
                    span.set_attribute("messaging.system", "redis")
                    span.set_attribute("messaging.destination.name", STREAM)
                    span.set_attribute("messaging.operation.type", "process")
                    span.set_attribute("messaging.consumer.group.name", GROUP)
                    span.set_attribute("messaging.message.id", message_id)
                    span.set_attribute("messaging.message.conversation_id", job["job_id"])
                    span.set_attribute("messaging.message.delivery_count", deliveries)
                    # How long the job waited in the stream: lab 04 asks Coralogix for it.
                    enqueued = float(fields.get("enqueued_at") or time.time())
                    span.set_attribute(
                        "workshop.queue.wait_ms",
                        round(max(0.0, time.time() - enqueued) * 1000, 1),
                    )
                    await self._run(job, message_id, fields, deliveries, span)
            finally:
                context.detach(token)

    async def _run(
        self,
        job: dict[str, Any],
        message_id: str,
        fields: dict[str, str],
        deliveries: int,
        span: Any,
    ) -> None:
        settings, redis = self.settings, self.redis
        job_id = job["job_id"]
        key = f"{JOB_PREFIX}{job_id}"
        await cast("Awaitable[int]", redis.hset(key, mapping={"status": "processing"}))
        attempt = deliveries
        reason = ""
        while attempt <= settings.worker_max_attempts:
            await self._slow_gate()
            try:
                await self._process_and_store(job, fields, message_id, status_key=key)
                enqueued = float(fields.get("enqueued_at", time.time()))
                self.job_latency.record((time.time() - enqueued) * 1000)
                self.jobs_processed.add(1)
                self.counts["processed"] += 1
                log.info("job stored", extra={"fields": {"job_id": job_id, "attempt": attempt}})
                return
            except Permanent as exc:
                await self._store_failed(job, fields, str(exc))
                await redis.xack(STREAM, GROUP, message_id)
                record_error(span, str(exc))
                return
            except Exception as exc:
                reason = str(exc)[:300] or type(exc).__name__
                self.jobs_failed.add(1)
                self.counts["failed_attempts"] += 1
                span.add_event("retry", {"retry.attempt": attempt, "error.message": reason})
                attempt += 1
                if self.stopping.is_set():
                    return  # leave it pending: the next worker life picks it up
                await asyncio.sleep(settings.worker_backoff_ms * 2 ** (attempt - 2) / 1000)
        await self._dead_letter(job, message_id, fields, reason, span)

    async def _slow_gate(self) -> None:
        for fault in self.service.faults.active("queue_stall"):
            if fault.params["mode"] == "slow":
                mark_span(fault)
                await asyncio.sleep(fault.params["delay_ms"] / 1000)
                return

    async def _process_and_store(
        self, job: dict[str, Any], fields: dict[str, str], message_id: str, status_key: str
    ) -> None:
        try:
            result = await self.service.http.post(
                ServiceName.PROCESSING, "/execute", json={"query": job["query"]}
            )
        except Problem as exc:
            if exc.status == 422:
                raise Permanent(exc.detail) from exc
            raise
        await self._store(
            job,
            fields,
            status="done",
            result=result,
            rows_scanned=result.get("rows_scanned"),
            elapsed_ms=result.get("elapsed_ms"),
        )
        # The result preview rides along in the status hash, so polls never need storage; the
        # status and the ack go in one transaction (one round trip, one span).
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                status_key,
                mapping={
                    "status": "done",
                    "completed_at": repr(time.time()),
                    "result": orjson.dumps(result).decode(),
                },
            )
            pipe.xack(STREAM, GROUP, message_id)
            await pipe.execute()

    async def _store_failed(self, job: dict[str, Any], fields: dict[str, str], error: str) -> None:
        await self._store(job, fields, status="failed", error=error)
        await cast(
            "Awaitable[int]",
            self.redis.hset(
                f"{JOB_PREFIX}{job['job_id']}", mapping={"status": "failed", "error": error[:300]}
            ),
        )

    async def _store(self, job: dict[str, Any], fields: dict[str, str], **outcome: Any) -> None:
        """Upsert the job's row in storage (idempotent: keyed by job id)."""
        await self.service.http.request(
            ServiceName.STORAGE,
            "PUT",
            f"/results/{job['job_id']}",
            json={
                "question": job["question"],
                "query": job["query"],
                "intent": job["intent"],
                "trace_id": current_trace_id(),
                "attendee": job.get("attendee"),
                "session": job.get("session"),
                "created_at": float(fields.get("enqueued_at", time.time())),
                **outcome,
            },
        )

    async def _dead_letter(
        self,
        job: dict[str, Any],
        message_id: str,
        fields: dict[str, str],
        reason: str,
        span: Any,
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            entry = {
                **fields,
                "reason": reason,
                "source_id": message_id,
                "dead_at": repr(time.time()),
            }
            pipe.xadd(DEAD_STREAM, cast(Entry, entry))
            pipe.xack(STREAM, GROUP, message_id)
            pipe.hset(
                f"{JOB_PREFIX}{job['job_id']}",
                mapping={"status": "failed", "error": f"dead-lettered: {reason}"},
            )
            await pipe.execute()
        self.jobs_dead.add(1)
        self.counts["dead"] += 1
        max_attempts = self.settings.worker_max_attempts
        record_error(span, f"dead-lettered after {max_attempts} attempts: {reason}")
        span.set_attribute("error.type", "dead_letter")
        log.error(
            "job dead-lettered", extra={"fields": {"job_id": job["job_id"], "reason": reason}}
        )


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The worker's app (run by `python -m stack.run queue-worker`): /stats, /health, /ready,
    and the consumer loops started by the lifespan."""
    service = Service(ServiceName.WORKER, uses_redis=True, settings=settings, redis=redis)
    worker = Worker(service)
    service.app.state.worker = worker
    service.on_startup(worker.startup)
    service.on_shutdown(worker.drain)

    @service.app.get("/stats")
    async def stats() -> dict[str, Any]:
        return await worker.stats()

    return service.app
