"""Concurrent SQLite writers (feedback posts + the worker storing results) never surface
"database is locked": WAL lets readers run beside the writer, busy_timeout queues writers."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections import Counter

import aiohttp

from stack.common.settings import ServiceName
from tests.helpers import eventually, questions, stored_job_ids, submit_many
from tests.reliability import SYNTHETIC


async def _hammer(base: str, job_ids: list[str], texts: list[str]) -> tuple[list, list]:
    sem = asyncio.Semaphore(40)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), headers=SYNTHETIC
    ) as session:

        async def rate(i: int) -> tuple[int, str]:
            job = job_ids[i % len(job_ids)]
            async with (
                sem,
                session.post(
                    f"{base}/api/queries/{job}/feedback",
                    json={"rating": 1 + i % 5, "comment": f"concurrent {i}"},
                ) as resp,
            ):
                return resp.status, await resp.text()

        feedback = asyncio.gather(*(rate(i) for i in range(200)))
        # The worker stores these while the feedback posts run.
        asked = submit_many(base, texts, concurrency=10, headers=SYNTHETIC)
        return await asyncio.gather(feedback, asked)


def test_concurrent_writers_never_see_database_is_locked(stack) -> None:
    base = stack.url(ServiceName.GATEWAY)
    tag = uuid.uuid4().hex[:6]
    corpus = questions()
    seed = asyncio.run(
        submit_many(base, [f"{q} (sqlite {tag} seed {i})" for i, q in enumerate(corpus[:20])])
    )
    seed_ids = [b["id"] for s, b in seed if s == 202]
    assert len(seed_ids) == 20
    eventually(
        lambda: all(i in stored_job_ids(stack.cfg) for i in seed_ids), 60, 0.5, what="seeded"
    )
    db = stack.cfg.data_dir / "feedback.db"

    def feedback_count() -> int:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT count(*) FROM feedback").fetchone()[0]
        finally:
            conn.close()

    before = feedback_count()
    texts = [f"{corpus[i % len(corpus)]} (sqlite {tag} {i})" for i in range(100)]
    feedback, asked = asyncio.run(_hammer(base, seed_ids, texts))
    statuses = [s for s, _ in feedback]
    print(
        f"feedback statuses={dict(Counter(statuses))} "
        f"questions_202={sum(1 for s, _ in asked if s == 202)}/100"
    )
    assert not any("database is locked" in text for _, text in feedback)
    assert not any("database is locked" in str(body) for _, body in asked)
    assert statuses.count(201) == 200
    ids = [b["id"] for s, b in asked if s == 202]
    assert len(ids) == 100
    eventually(lambda: all(i in stored_job_ids(stack.cfg) for i in ids), 60, 0.5, what="stored")
    assert feedback_count() == before + 200
    logs = (stack.cfg.log_dir / "storage-service.log").read_text(errors="replace")
    assert "database is locked" not in logs
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
