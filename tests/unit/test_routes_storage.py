"""storage-service in-process: results, feedback and history in a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from typing import Any

from stack.common.settings import Settings
from stack.services.storage import create_app
from tests.unit.inprocess import client_for


def _result(**extra: Any) -> dict[str, Any]:
    return {
        "question": "errors from checkout",
        "query": "source logs | limit 1",
        "intent": "errors",
        "status": "done",
        "result": {"kind": "rows", "rows": [{"a": 1}]},
        "rows_scanned": 10,
        "elapsed_ms": 1.5,
        "attendee": "alice",
        "created_at": time.time(),
        **extra,
    }


def test_result_stored_once_and_read_back(route_settings: Settings) -> None:
    job_id = uuid.uuid4().hex

    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            first = await c.put(f"/results/{job_id}", json=_result())
            assert first.status_code == 200, first.text
            assert first.json() == {"job_id": job_id, "stored": True, "created": True}
            # a redelivered job (worker crashed before XACK) is an upsert, not a second row
            again = await c.put(f"/results/{job_id}", json=_result())
            assert again.json()["created"] is False
            row = (await c.get(f"/results/{job_id}")).json()
            assert row["status"] == "done" and row["result"] == {"kind": "rows", "rows": [{"a": 1}]}
            assert row["attempts"] == 2 and row["attendee"] == "alice"
            history = (await c.get("/history", params={"attendee": "alice"})).json()
            assert history["total"] == 1 and history["items"][0]["job_id"] == job_id
            assert (await c.get("/ready")).json()["checks"]["sqlite"] == "ok"

    asyncio.run(scenario())
    # the real SQLite file in this test's data dir holds exactly one row
    with sqlite3.connect(route_settings.db_path) as db:
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


def test_feedback_and_its_validation(route_settings: Settings) -> None:
    job_id = uuid.uuid4().hex
    settings = route_settings.model_copy(update={"comment_max_chars": 12})

    async def scenario() -> None:
        async with client_for(create_app(settings)) as c:
            early = await c.post("/feedback", json={"job_id": job_id, "rating": 4})
            assert early.status_code == 404 and early.json()["service"] == "storage-service"
            await c.put(f"/results/{job_id}", json=_result())
            ok = await c.post("/feedback", json={"job_id": job_id, "rating": 4, "comment": "ok"})
            assert ok.status_code == 201 and ok.json()["rating"] == 4
            bad = await c.post("/feedback", json={"job_id": job_id, "rating": 9})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "rating"
            long = await c.post(
                "/feedback", json={"job_id": job_id, "rating": 3, "comment": "x" * 13}
            )
            assert long.status_code == 422 and long.json()["errors"][0]["field"] == "comment"
            stats = (await c.get("/stats")).json()
            assert stats["jobs"]["done"] == 1 and stats["feedback"]["ratings"] == {"4": 1}
            reset = (await c.post("/admin/reset")).json()
            assert reset["jobs_removed"] == 1 and reset["feedback_removed"] == 1
            missing = await c.get(f"/results/{job_id}")
            assert missing.status_code == 404

    asyncio.run(scenario())


def _hold_write_lock(db_path: Any, seconds: float, held: Any) -> None:
    """Another process's writer (a learner's sqlite3 shell, say): the write lock for `seconds`."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_locked_database_waits_off_the_event_loop(route_settings: Settings) -> None:
    """SQLite work runs on the event loop (issue 19), but never waits there: a write that meets
    another writer's lock is redone in the threadpool, where it queues for the lock and then
    lands, while the loop goes on answering reads. Waiting on the loop would stall the read
    for the whole lock; not queueing would refuse the write with "database is locked"."""
    import threading

    stored, late = uuid.uuid4().hex, uuid.uuid4().hex

    async def scenario() -> None:
        async with client_for(create_app(route_settings)) as c:
            assert (await c.put(f"/results/{stored}", json=_result())).status_code == 200
            held = threading.Event()
            locker = threading.Thread(
                target=_hold_write_lock, args=(route_settings.db_path, 1.5, held)
            )
            locker.start()
            await asyncio.to_thread(held.wait, 5)
            t0 = time.monotonic()
            write = asyncio.create_task(c.put(f"/results/{late}", json=_result()))
            await asyncio.sleep(0.1)
            read = await c.get(f"/results/{stored}")  # a WAL read: not blocked by the writer
            read_s = time.monotonic() - t0
            assert read.status_code == 200, read.text
            assert not write.done(), "the write did not wait for the lock"
            assert read_s < 1.0, f"the read waited {read_s:.2f} s behind the locked write"
            written = await write
            assert written.status_code == 200, written.text
            assert written.json()["created"] is True
            assert time.monotonic() - t0 >= 1.0  # it queued for the lock
            await asyncio.to_thread(locker.join, 5)
            assert (await c.get(f"/results/{late}")).status_code == 200

    asyncio.run(scenario())
