"""storage-service: results, feedback and history in SQLite (WAL, versioned migrations).

Writes are upserts keyed by job id, so a job redelivered after a worker crash is stored once.
"""

# No `from __future__ import annotations`: the routes are declared inside `create_app` with a
# request model built there (the comment's length limit comes from the settings), and FastAPI
# resolves string annotations only in the module's globals.

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stack.common.faults import Fault
from stack.common.problems import Problem
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.storage.db import Database
from stack.storage.migrations import INDEXES

T = TypeVar("T")

JOB_COLUMNS = (
    "job_id, question, query, intent, status, rows_scanned, elapsed_ms, error, trace_id, "
    "attendee, session, attempts, created_at, completed_at"
)


class ResultIn(BaseModel):
    question: str = Field(max_length=10_000)
    query: str = Field(max_length=20_000)
    intent: str = Field(max_length=100)
    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None
    rows_scanned: int | None = None
    elapsed_ms: float | None = None
    error: str | None = Field(None, max_length=2_000)
    trace_id: str | None = Field(None, max_length=64)
    attendee: str | None = Field(None, max_length=100)
    session: str | None = Field(None, max_length=100)
    created_at: float
    completed_at: float | None = None


def service_log(message: str, **fields: Any) -> None:
    logging.getLogger("stack.storage").info(message, extra={"fields": fields})


class SlowDb:
    """The slow_db fault: a real reason for slow queries (indexes dropped, a competing writer)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engaged = False  # indexes dropped or a competing writer: statements may wait
        self._lock_stop = threading.Event()
        self._lock_thread: threading.Thread | None = None

    def _hold_write_lock(self, lock_ms: int) -> None:
        """A competing batch job: holds the write lock in bursts of `lock_ms` with gaps of a
        quarter of that, so writers queue behind it (SQLite allows one writer at a time; WAL
        readers are not blocked).

        It takes the lock with a tight retry instead of SQLite's busy handler, whose growing
        sleeps would let a steady stream of short writes starve it.
        """
        conn = self.db.connect()
        conn.execute("PRAGMA busy_timeout=0")
        while not self._lock_stop.is_set():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                time.sleep(0.001)
                continue
            self._lock_stop.wait(lock_ms / 1000)
            conn.execute("COMMIT")
            self._lock_stop.wait(lock_ms / 4000)
        conn.close()

    async def apply(self, faults: list[Fault]) -> None:
        active = [f for f in faults if f.kind == "slow_db" and f.active()]
        if active:  # before the indexes go: no statement may wait on the event loop
            self.engaged = True

        def change_indexes() -> None:
            conn = self.db.connect()
            if active:
                for name in INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
            else:
                for ddl in INDEXES.values():
                    conn.execute(ddl)
            conn.close()

        await asyncio.to_thread(change_indexes)
        self._lock_stop.set()
        if self._lock_thread:
            self._lock_thread.join(timeout=3)
            self._lock_thread = None
        if active and active[0].params["lock_ms"]:
            self._lock_stop.clear()
            self._lock_thread = threading.Thread(
                target=self._hold_write_lock, args=(active[0].params["lock_ms"],), daemon=True
            )
            self._lock_thread.start()
        self.engaged = bool(active)


class DbCalls:
    """Where a route's SQLite work runs: on the event loop, or in the threadpool when it may
    wait.

    A statement here takes tens of microseconds, while a hop to the threadpool and back cost
    about 0.6 ms of CPU per request at lab-traffic rates (two more thread wakeups; measured
    on the live service, 400 paced requests each way; issue 19). So the work runs on the
    loop, on a connection that never waits for a lock (busy_timeout 0). If it meets a lock
    anyway (a backup, a learner's sqlite3 shell), the same work is redone in the threadpool,
    where the busy timeout queues it while the loop goes on serving. Under a slow_db fault
    (indexes dropped, a competing writer) every call goes to the threadpool.
    `STORAGE_DB_CALLS=threadpool` puts every call there (the budget bench's baseline arm)."""

    def __init__(self, db: Database, slow_db: SlowDb, *, on_loop: bool) -> None:
        self.db = db
        self.slow_db = slow_db
        self.on_loop = on_loop
        self._loop_conn: sqlite3.Connection | None = None

    def _loop_connection(self) -> sqlite3.Connection:
        if self._loop_conn is None:
            self._loop_conn = self.db.conn  # this thread's (the loop's) own connection
            self._loop_conn.execute("PRAGMA busy_timeout=0")
        return self._loop_conn

    async def __call__(self, work: Callable[[], T]) -> T:
        if self.on_loop and not self.slow_db.engaged:
            conn = self._loop_connection()
            try:
                return work()
            except sqlite3.OperationalError as exc:
                # the primary code (the low byte): SQLITE_BUSY_SNAPSHOT and the like are busy too
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                if conn.in_transaction:
                    conn.rollback()
        return await run_in_threadpool(work)


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The storage service's app (run by `python -m stack.run storage-service`)."""
    service = Service(ServiceName.STORAGE, settings=settings, redis=redis)
    app = service.app
    cfg = service.settings
    db = Database(cfg.db_path)
    slow_db = SlowDb(db)
    on_db = DbCalls(db, slow_db, on_loop=cfg.storage_db_calls == "loop")

    class FeedbackIn(BaseModel):
        job_id: str = Field(max_length=64)
        rating: int = Field(ge=1, le=5)
        comment: str | None = Field(None, max_length=cfg.comment_max_chars)
        trace_id: str | None = Field(None, max_length=64)

    async def _check_db() -> None:
        await asyncio.to_thread(lambda: db.connect().execute("SELECT 1").fetchone())

    @service.on_startup
    async def _startup() -> None:
        applied = await asyncio.to_thread(db.migrate)
        if applied:
            service_log("migrated", versions=applied)
        service.add_ready_check("sqlite", _check_db)
        # A slow_db fault that ended while we were down must not leave indexes missing.
        await slow_db.apply(service.faults.active("slow_db"))
        service.faults.on_change(slow_db.apply)

    @app.put("/results/{job_id}")
    async def put_result(job_id: str, body: ResultIn) -> dict[str, Any]:
        return await on_db(lambda: _put_result(job_id, body))

    def _put_result(job_id: str, body: ResultIn) -> dict[str, Any]:
        row = db.fetchone(
            """
            INSERT INTO jobs (job_id, question, query, intent, status, result_json,
                              rows_scanned, elapsed_ms, error, trace_id, attendee, session,
                              created_at, completed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (job_id) DO UPDATE SET
                status = excluded.status, result_json = excluded.result_json,
                rows_scanned = excluded.rows_scanned, elapsed_ms = excluded.elapsed_ms,
                error = excluded.error, completed_at = excluded.completed_at,
                attempts = jobs.attempts + 1
            RETURNING attempts
            """,
            (
                job_id,
                body.question,
                body.query,
                body.intent,
                body.status,
                orjson.dumps(body.result).decode() if body.result is not None else None,
                body.rows_scanned,
                body.elapsed_ms,
                body.error,
                body.trace_id,
                body.attendee,
                body.session,
                body.created_at,
                body.completed_at or time.time(),
            ),
        )
        assert row is not None
        return {"job_id": job_id, "stored": True, "created": row["attempts"] == 1}

    @app.get("/results/{job_id}")
    async def get_result(job_id: str) -> dict[str, Any]:
        return await on_db(lambda: _get_result(job_id))

    def _get_result(job_id: str) -> dict[str, Any]:
        row = db.fetchone(
            f"SELECT {JOB_COLUMNS}, result_json FROM jobs WHERE job_id = ?", (job_id,)
        )
        if row is None:
            raise Problem(404, f"no stored result for `{job_id}`", service=service.name.value)
        raw = row.pop("result_json")
        row["result"] = orjson.loads(raw) if raw else None
        return row

    @app.post("/feedback", status_code=201)
    async def add_feedback(body: FeedbackIn) -> dict[str, Any]:
        return await on_db(lambda: _add_feedback(body))

    def _add_feedback(body: FeedbackIn) -> dict[str, Any]:
        if db.fetchone("SELECT 1 AS ok FROM jobs WHERE job_id = ?", (body.job_id,)) is None:
            raise Problem(
                404, f"no stored result for `{body.job_id}` yet", service=service.name.value
            )
        row = db.fetchone(
            "INSERT INTO feedback (job_id, rating, comment, trace_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (body.job_id, body.rating, body.comment, body.trace_id, time.time()),
        )
        assert row is not None
        return {"id": row["id"], "job_id": body.job_id, "rating": body.rating}

    @app.get("/history")
    async def history(
        page: int = 1, page_size: int = 20, attendee: str | None = None
    ) -> dict[str, Any]:
        return await on_db(lambda: _history(page, page_size, attendee))

    def _history(page: int, page_size: int, attendee: str | None) -> dict[str, Any]:
        where, params = ("WHERE j.attendee = ?", [attendee]) if attendee else ("", [])
        items = db.fetchall(
            f"""
            SELECT j.job_id, j.question, j.query, j.intent, j.status, j.error, j.attendee,
                   j.created_at, j.completed_at, j.trace_id,
                   (SELECT f.rating FROM feedback f WHERE f.job_id = j.job_id
                    ORDER BY f.id DESC LIMIT 1) AS rating
            FROM jobs j {where} ORDER BY j.created_at DESC LIMIT ? OFFSET ?
            """,
            (*params, page_size, (page - 1) * page_size),
        )
        total = db.fetchone(f"SELECT count(*) AS n FROM jobs j {where}", params)
        return {
            "items": items,
            "page": page,
            "page_size": page_size,
            "total": total["n"] if total else 0,
        }

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return await on_db(_stats)

    def _stats() -> dict[str, Any]:
        by_status = {
            r["status"]: r["n"]
            for r in db.fetchall("SELECT status, count(*) AS n FROM jobs GROUP BY status")
        }
        fb = db.fetchone("SELECT count(*) AS n, avg(rating) AS avg_rating FROM feedback") or {
            "n": 0,
            "avg_rating": None,
        }
        ratings = {
            str(r["rating"]): r["n"]
            for r in db.fetchall("SELECT rating, count(*) AS n FROM feedback GROUP BY rating")
        }
        return {
            "jobs": {"done": by_status.get("done", 0), "failed": by_status.get("failed", 0)},
            "feedback": {"count": fb["n"], "avg_rating": fb["avg_rating"], "ratings": ratings},
        }

    @app.post("/admin/reset")
    async def reset() -> dict[str, Any]:
        return await on_db(_reset)

    def _reset() -> dict[str, Any]:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        feedback = conn.execute("DELETE FROM feedback").rowcount
        jobs = conn.execute("DELETE FROM jobs").rowcount
        conn.execute("COMMIT")
        for ddl in INDEXES.values():
            conn.execute(ddl)
        return {"reset": True, "jobs_removed": jobs, "feedback_removed": feedback}

    return app
