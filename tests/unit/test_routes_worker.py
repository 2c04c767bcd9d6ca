"""queue-worker in-process: jobs from the stream through processing to storage, acknowledged.

processing-service and storage-service are this test's own apps, served on their ports in the
same event loop (the worker reaches them over HTTP, as on the stack); the jobs are enqueued
through queue-service's app."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import redis.asyncio as aioredis

from stack.common.faults import store as fault_store
from stack.common.faults.model import Fault, FaultSpec
from stack.common.redis import GROUP, JOB_PREFIX, STREAM
from stack.common.settings import ServiceName, Settings
from stack.services import processing, queue, storage, worker
from tests.unit.inprocess import client_for, serving


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := await check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_worker_processes_and_stores_jobs(route_settings: Settings) -> None:
    settings = route_settings.model_copy(update={"worker_consumer": "worker-test"})
    good, bad = uuid.uuid4().hex, uuid.uuid4().hex

    async def scenario() -> None:
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        port = settings.port
        async with (
            serving(processing.create_app(settings), port(ServiceName.PROCESSING)),
            serving(storage.create_app(settings), port(ServiceName.STORAGE)),
            client_for(queue.create_app(settings, redis=redis)) as q,
            client_for(storage.create_app(settings)) as store,
            client_for(worker.create_app(settings, redis=redis)) as w,
        ):
            for job_id, query in ((good, "source logs | limit 3"), (bad, "source logs | fliter")):
                job = {"job_id": job_id, "question": "q", "query": query, "intent": "errors"}
                assert (await q.post("/jobs", json=job)).status_code == 202

            async def finished() -> dict[str, dict[str, str]] | None:
                status = {j: await redis.hgetall(f"{JOB_PREFIX}{j}") for j in (good, bad)}
                done = all(s.get("status") in ("done", "failed") for s in status.values())
                return status if done else None

            status = await _until(finished)
            assert status[good]["status"] == "done" and "rows" in status[good]["result"]
            # a query processing refuses (422) is a permanent failure: stored, not retried
            assert status[bad]["status"] == "failed" and status[bad]["error"]
            stored = (await store.get(f"/results/{good}")).json()
            assert stored["status"] == "done" and stored["rows_scanned"] >= 3
            failed = (await store.get(f"/results/{bad}")).json()
            assert failed["status"] == "failed" and failed["error"]
            stats = (await w.get("/stats")).json()
            assert stats["consumer"] == "worker-test" and stats["processed"] == 1
            assert stats["inflight"] == 0 and stats["dead"] == 0
            # both entries acknowledged: nothing pending for the group
            assert (await redis.xpending(STREAM, GROUP))["pending"] == 0
        await redis.aclose()

    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def _paused_world(
    settings: Settings, redis: aioredis.Redis, *, own_clients: bool
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[[], Awaitable[Fault]]]]:
    """processing and storage served, queue-service's app, and an idle worker waiting on the
    stream (its own Redis clients, as on the stack, or the test's). Yields the queue client and
    `pause()`, which adds a queue_stall pause and returns once the worker has it."""
    port = settings.port
    app = worker.create_app(settings) if own_clients else worker.create_app(settings, redis=redis)
    async with (
        serving(processing.create_app(settings), port(ServiceName.PROCESSING)),
        serving(storage.create_app(settings), port(ServiceName.STORAGE)),
        client_for(queue.create_app(settings, redis=redis)) as q,
        client_for(app),
    ):
        await _until(lambda: _waiting_reads(redis))
        engine = app.state.worker.service.faults

        async def pause() -> Fault:
            spec = FaultSpec(
                kind="queue_stall", target="queue-worker", params={"mode": "pause"}, ttl_seconds=60
            )
            fault = Fault.create(spec)
            await fault_store.add_fault(redis, fault)

            async def paused() -> bool:
                return bool(engine.active("queue_stall"))

            await _until(paused)
            return fault

        yield q, pause


async def _waiting_reads(redis: aioredis.Redis) -> list[str]:
    """Ids of the connections blocked in XREADGROUP (the worker waiting on the stream)."""
    clients = await redis.client_list()
    return [c["id"] for c in clients if c["cmd"] == "xreadgroup" and "b" in c["flags"]]


async def _enqueue_then_status(q: httpx.AsyncClient, redis: aioredis.Redis, job_id: str) -> str:
    """Enqueue a job, give a worker that should not run it time to, and return its status."""
    job = {"job_id": job_id, "question": "q", "query": "source logs | limit 3", "intent": "errors"}
    assert (await q.post("/jobs", json=job)).status_code == 202
    await asyncio.sleep(1.5)
    return str(await redis.hget(f"{JOB_PREFIX}{job_id}", "status"))


async def _clear_and_wait_done(redis: aioredis.Redis, pause: Fault, job_id: str) -> None:
    """Held, not lost: once the pause is cleared the job runs."""
    await fault_store.remove_fault(redis, pause.id)

    async def done() -> bool:
        return (await redis.hget(f"{JOB_PREFIX}{job_id}", "status")) == "done"

    await _until(done)


def test_a_pause_holds_a_job_that_reaches_a_read_already_waiting(route_settings: Settings) -> None:
    """An idle worker waits on the stream in a blocking read. A queue_stall pause that arrives
    meanwhile must also hold the job that read brings back: nothing runs until it is cleared.
    (The read used to be retried past its block, so it never came back to the pause gate.)"""
    settings = route_settings.model_copy(
        update={"worker_consumer": "worker-test", "worker_block_ms": 4000}
    )
    job_id = uuid.uuid4().hex

    async def scenario() -> None:
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        async with _paused_world(settings, redis, own_clients=False) as (q, pause):
            fault = await pause()
            assert await _waiting_reads(redis), "the read began before the pause and still waits"
            status = await _enqueue_then_status(q, redis, job_id)
            assert status == "queued", f"a paused worker ran the job: {status}"
            await _clear_and_wait_done(redis, fault, job_id)
        await redis.aclose()

    asyncio.run(scenario())


def test_a_paused_worker_does_not_read_again_when_its_connection_drops(
    route_settings: Settings,
) -> None:
    """A Redis restart drops the connection a worker waits on. A paused worker must not send
    its read again on a new connection (redis-py's retry used to): the jobs that arrive stay in
    the stream, undelivered, until the pause is cleared. The worker builds its own Redis clients
    here, as on the stack; the kill stands in for the restart."""
    settings = route_settings.model_copy(update={"worker_consumer": "worker-test"})
    job_id = uuid.uuid4().hex

    async def scenario() -> None:
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        async with _paused_world(settings, redis, own_clients=True) as (q, pause):
            waiting = await _waiting_reads(redis)
            fault = await pause()
            for client_id in waiting:
                await redis.client_kill_filter(_id=client_id)
            await asyncio.sleep(0.5)
            assert await _enqueue_then_status(q, redis, job_id) == "queued"
            group = {g["name"]: g for g in await redis.xinfo_groups(STREAM)}[GROUP]
            assert group["lag"] == 1, "a paused worker read the stream again after the drop"
            await _clear_and_wait_done(redis, fault, job_id)
        await redis.aclose()

    asyncio.run(scenario())
