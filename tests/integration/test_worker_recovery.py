"""A queue-worker killed with SIGKILL mid-job: its jobs still complete after the restart."""

from __future__ import annotations

import asyncio
import signal

from stack.client import Gateway
from stack.common.settings import ServiceName
from tests.helpers import (
    eventually,
    kill_program,
    questions,
    stored_job_ids,
    submit_many,
    wait_program_running,
)


def test_sigkilled_worker_jobs_complete_after_restart(stack, admin: Gateway) -> None:
    # Slow processing down so jobs are genuinely in flight when the worker dies.
    fault = admin.add_fault("latency", "processing-service", params={"ms": 400}, ttl_seconds=60)
    try:
        texts = [f"{q} (recovery {i})" for i, q in enumerate(questions()[:120])]
        answers = asyncio.run(submit_many(stack.url(ServiceName.GATEWAY), texts))
        ids = [body["id"] for status, body in answers if status == 202]
        assert len(ids) == 120

        def in_flight() -> bool:
            return admin.stats()["queue"]["pending"] > 0

        eventually(in_flight, 15, 0.05, what="jobs pending in the worker")
        pending_at_kill = admin.stats()["queue"]["pending"]
        old = kill_program(stack.cfg, "queue-worker", signal.SIGKILL)
        wait_program_running(stack.cfg, "queue-worker", old)
    finally:
        admin.remove_fault(fault["id"])

    eventually(
        lambda: all(i in stored_job_ids(stack.cfg) for i in ids),
        120,
        1,
        what="every job stored after the worker restart",
    )
    stored = stored_job_ids(stack.cfg)
    print(f"pending at kill={pending_at_kill} stored={sum(i in stored for i in ids)}/120")
    assert all(stored[i] == 1 for i in ids)
    assert all(admin.get(i)["status"] == "done" for i in ids[:10])
