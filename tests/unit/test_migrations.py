"""Versioned migrations upgrade an older database in place, keeping its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stack.storage.migrations import SCHEMA_VERSION, current_version, migrate


def test_fresh_database_reaches_latest_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    assert migrate(conn) == list(range(1, SCHEMA_VERSION + 1))
    assert current_version(conn) == SCHEMA_VERSION
    assert migrate(conn) == []  # idempotent


def test_version_1_database_is_upgraded_without_losing_rows(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    migrate(conn, target=1)
    conn.execute(
        "INSERT INTO jobs (job_id, question, query, intent, status, created_at, completed_at) "
        "VALUES ('a' || hex(randomblob(15)), 'q', 'source logs', 'free_text', 'done', 1, 2)"
    )
    conn.execute("INSERT INTO feedback (job_id, rating, created_at) SELECT job_id, 4, 3 FROM jobs")
    assert migrate(conn) == list(range(2, SCHEMA_VERSION + 1))
    row = conn.execute("SELECT question, attendee, attempts FROM jobs").fetchone()
    assert row == ("q", None, 1)
    assert conn.execute("SELECT rating FROM feedback").fetchone() == (4,)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "idx_jobs_attendee_created" in indexes


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    import stack.storage.migrations as mig

    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    migrate(conn, target=1)
    broken = [*mig.MIGRATIONS[:1], "ALTER TABLE jobs ADD COLUMN x TEXT; THIS IS NOT SQL"]
    original = mig.MIGRATIONS
    mig.MIGRATIONS = broken
    try:
        try:
            mig.migrate(conn, target=2)
        except sqlite3.OperationalError:
            pass
        else:  # pragma: no cover - the broken script must fail
            raise AssertionError("broken migration applied")
    finally:
        mig.MIGRATIONS = original
    assert current_version(conn) == 1
    columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    assert "x" not in columns
