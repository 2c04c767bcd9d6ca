"""60 s of steady traffic while the worker and storage are SIGKILLed and Redis restarts.

Every question answered 202 ends stored exactly once or dead-lettered with a reason; nothing
is lost or duplicated, errors during the chaos are clean problems, SQLite stays intact.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import orjson
import redis

from stack.common.redis import DEAD_STREAM
from stack.common.settings import ServiceName
from stack.native.supervisor import Supervisor, redis_ping
from tests.helpers import eventually, kill_program, stored_job_ids, wait_program_running
from tests.reliability import is_clean_problem, steady_load

DURATION = 60.0
RATE = 25.0


def dead_letters(redis_url: str) -> dict[str, str]:
    """job_id → reason for every entry in stream:jobs:dead."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        out = {}
        for _id, fields in client.xrange(DEAD_STREAM):
            job = orjson.loads(fields["payload"])
            out[job["job_id"]] = fields.get("reason", "")
        return out
    finally:
        client.close()


def integrity(cfg) -> str:
    conn = sqlite3.connect(f"file:{cfg.data_dir / 'feedback.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def chaos(cfg, log: list[str]) -> None:
    t0 = time.monotonic()

    def at(second: float) -> None:
        time.sleep(max(0.0, second - (time.monotonic() - t0)))

    def kill(name: str) -> None:
        old = kill_program(cfg, name, signal.SIGKILL)
        new = wait_program_running(cfg, name, old, timeout=30)
        log.append(f"{time.monotonic() - t0:5.1f}s SIGKILL {name} pid {old} → {new}")

    at(8)
    kill(ServiceName.WORKER.value)
    at(20)
    kill(ServiceName.STORAGE.value)
    at(32)
    Supervisor(cfg).ctl("restart", "redis")
    eventually(lambda: redis_ping(cfg.redis_port), 20, what="redis back")
    log.append(f"{time.monotonic() - t0:5.1f}s redis restarted gracefully")
    at(44)
    kill(ServiceName.WORKER.value)


async def run(stack, log: list[str]):
    load = steady_load(
        stack.url(ServiceName.GATEWAY), rate=RATE, duration=DURATION, timeout=15, tag="chaos"
    )
    result, _ = await asyncio.gather(load, asyncio.to_thread(chaos, stack.cfg, log))
    return result


def test_chaos_nothing_lost_nothing_duplicated(stack) -> None:
    log: list[str] = []
    result = asyncio.run(run(stack, log))
    print("\n".join(log))
    accepted = result.accepted_ids
    assert len(accepted) > DURATION * RATE * 0.5, result.by_status()
    assert len(set(accepted)) == len(accepted)

    def settled() -> bool:
        stored, dead = stored_job_ids(stack.cfg), dead_letters(stack.redis_url)
        return all(i in stored or i in dead for i in accepted)

    eventually(settled, timeout=120, interval=1, what="every accepted job stored or dead")
    stored, dead = stored_job_ids(stack.cfg), dead_letters(stack.redis_url)
    n_stored = sum(1 for i in accepted if i in stored)
    n_dead = sum(1 for i in accepted if i not in stored and i in dead)
    lost = sum(1 for i in accepted if i not in stored and i not in dead)
    duplicated = sum(1 for i in accepted if stored.get(i, 0) > 1)
    rejected = result.rejected
    print(
        f"accepted={len(accepted)} stored={n_stored} dead={n_dead} lost={lost} "
        f"duplicated={duplicated} non_202={len(rejected)} by_status={result.by_status()}"
    )
    for job_id in accepted:
        if job_id in dead and job_id not in stored:
            assert dead[job_id], f"dead letter {job_id} carries no reason"
    assert lost == 0
    assert duplicated == 0

    # Errors during the chaos are allowed, but clean: problem JSON 5xx, no hang, no traceback.
    hangs = [a for a in rejected if a.status == 0]
    assert not hangs, [(a.error, a.detail, round(a.seconds, 1)) for a in hangs[:5]]
    unclean = [a for a in rejected if a.status < 500 or not is_clean_problem(a)]
    assert not unclean, [(a.status, a.content_type, a.text[:200]) for a in unclean[:5]]
    assert max(a.seconds for a in result.answers) < 15
    assert not any("database is locked" in a.text for a in result.answers)
    assert integrity(stack.cfg) == "ok"
