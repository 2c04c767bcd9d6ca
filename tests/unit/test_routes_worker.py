"""queue-worker in-process: jobs from the stream through processing to storage, acknowledged.

processing-service and storage-service are this test's own apps, served on their ports in the
same event loop (the worker reaches them over HTTP, as on the stack); the jobs are enqueued
through queue-service's app."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

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
