"""A graceful Redis restart keeps the stream, the group's pending entries and active faults
(appendonly yes + appendfsync everysec; SIGTERM makes Redis fsync before it exits)."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis

from stack.client import Gateway
from stack.common.redis import GROUP, STREAM
from stack.common.settings import ServiceName
from stack.native.supervisor import Supervisor, redis_ping
from tests.helpers import eventually, stored_job_ids, submit_many
from tests.reliability import SYNTHETIC

HOLDER = "test-holder"


def test_stream_pending_entries_and_faults_survive_a_redis_restart(stack, admin: Gateway) -> None:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    # Pause the worker so new jobs stay in the stream; a harmless fault to check survives.
    stall = admin.add_fault(
        "queue_stall", "queue-worker", params={"mode": "pause"}, ttl_seconds=120
    )
    marker = admin.add_fault(
        "latency", "validation-service", params={"ms": 1}, probability=0.0, ttl_seconds=300
    )
    try:
        time.sleep(1.5)  # the pause reaches the worker over pub/sub at once
        tag = uuid.uuid4().hex[:6]
        texts = [f"errors from checkout by status code (persist {tag} {i})" for i in range(6)]
        answers = asyncio.run(
            submit_many(stack.url(ServiceName.GATEWAY), texts, concurrency=6, headers=SYNTHETIC)
        )
        ids = [body["id"] for status, body in answers if status == 202]
        assert len(ids) == 6
        # Hold three of them as a consumer that never acks: deterministic PENDING entries.
        held = client.xreadgroup(GROUP, HOLDER, {STREAM: ">"}, count=3)
        held_ids = [mid for mid, _ in held[0][1]]
        assert len(held_ids) == 3

        before_len = client.xlen(STREAM)
        before_pending = {
            p["message_id"] for p in client.xpending_range(STREAM, GROUP, "-", "+", 1000, HOLDER)
        }
        before_group = {g["name"]: g for g in client.xinfo_groups(STREAM)}[GROUP]
        assert set(held_ids) <= before_pending

        Supervisor(stack.cfg).ctl("restart", "redis")
        eventually(lambda: redis_ping(stack.cfg.redis_port), 20, what="redis back")

        assert client.xlen(STREAM) == before_len
        after_pending = {
            p["message_id"] for p in client.xpending_range(STREAM, GROUP, "-", "+", 1000, HOLDER)
        }
        assert after_pending == before_pending
        after_group = {g["name"]: g for g in client.xinfo_groups(STREAM)}[GROUP]
        assert after_group["last-delivered-id"] == before_group["last-delivered-id"]
        faults = eventually(lambda: {f["id"] for f in admin.faults()}, 20, what="faults readable")
        assert {stall["id"], marker["id"]} <= faults
        print(
            f"stream length={before_len} pending(test-holder)={len(after_pending)} "
            f"faults kept={sorted({stall['id'], marker['id']})}"
        )
    finally:
        admin.remove_fault(stall["id"])
        admin.remove_fault(marker["id"])

    # With the stall gone the worker XAUTOCLAIMs what the "crashed" holder never acked.
    eventually(
        lambda: all(i in stored_job_ids(stack.cfg) for i in ids),
        60,
        0.5,
        what="held jobs claimed and stored",
    )
    assert all(stored_job_ids(stack.cfg)[i] == 1 for i in ids)
    client.xgroup_delconsumer(STREAM, GROUP, HOLDER)
    client.close()
