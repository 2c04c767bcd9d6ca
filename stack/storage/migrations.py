"""Versioned schema migrations keyed by `PRAGMA user_version`.

Each entry upgrades the schema from version i to i+1; `migrate` applies the missing ones in
one transaction each, so an older database file is upgraded in place without losing rows.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: jobs with their results, and feedback.
    """
    CREATE TABLE jobs (
        job_id       TEXT PRIMARY KEY,
        question     TEXT NOT NULL,
        query        TEXT NOT NULL,
        intent       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        result_json  TEXT,
        rows_scanned INTEGER,
        elapsed_ms   REAL,
        error        TEXT,
        trace_id     TEXT,
        created_at   REAL NOT NULL,
        completed_at REAL NOT NULL
    );
    CREATE INDEX idx_jobs_created_at ON jobs (created_at);
    CREATE TABLE feedback (
        id         INTEGER PRIMARY KEY,
        job_id     TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        comment    TEXT,
        trace_id   TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX idx_feedback_job_id ON feedback (job_id);
    """,
    # 2: who asked (per-attendee history in a shared stack) and how many deliveries it took.
    """
    ALTER TABLE jobs ADD COLUMN attendee TEXT;
    ALTER TABLE jobs ADD COLUMN session TEXT;
    ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX idx_jobs_attendee_created ON jobs (attendee, created_at);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# Indexes the history and stats queries rely on; the `slow_db` fault drops them.
INDEXES: dict[str, str] = {
    "idx_jobs_created_at": "CREATE INDEX IF NOT EXISTS idx_jobs_created_at ON jobs (created_at)",
    "idx_feedback_job_id": "CREATE INDEX IF NOT EXISTS idx_feedback_job_id ON feedback (job_id)",
    "idx_jobs_attendee_created": (
        "CREATE INDEX IF NOT EXISTS idx_jobs_attendee_created ON jobs (attendee, created_at)"
    ),
}


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply missing migrations up to `target`; returns the versions applied."""
    applied = []
    version = current_version(conn)
    while version < target:
        script = MIGRATIONS[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript would COMMIT first; run statement by statement inside our txn.
            for statement in (s.strip() for s in script.split(";")):
                if statement:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        version += 1
        applied.append(version)
    return applied
