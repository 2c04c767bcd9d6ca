"""SQLite access with one connection per thread, WAL, a busy timeout and traced queries.

Every statement is a CLIENT span following the database semantic conventions (db.system,
db.namespace, db.operation.name, db.query.text, server.address), which the stock sqlite3
instrumentation does not emit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from stack.storage.migrations import migrate

_tracer = trace.get_tracer("stack.storage")


@lru_cache(maxsize=256)
def _describe(sql: str) -> tuple[str, str]:
    """Operation name and one-line query text; the statements are constants, so once each."""
    return sql.lstrip().split(None, 1)[0].upper(), " ".join(sql.split())


class Database:
    def __init__(self, path: Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.namespace = path.name

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # Automatic indexes would paper over a missing index; we rely on explicit ones.
        conn.execute("PRAGMA automatic_index=OFF")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    def migrate(self) -> list[int]:
        with self.connect() as conn:
            return migrate(conn)

    @contextmanager
    def span(self, sql: str) -> Iterator[trace.Span]:
        operation, text = _describe(sql)
        with _tracer.start_as_current_span(
            f"{operation} {self.namespace}", kind=SpanKind.CLIENT
        ) as span:
            if span.is_recording():
                span.set_attribute("db.system", "sqlite")
                span.set_attribute("db.system.name", "sqlite")
                span.set_attribute("db.namespace", self.namespace)
                span.set_attribute("db.operation.name", operation)
                span.set_attribute("db.query.text", text)
                span.set_attribute("server.address", "localhost")
            yield span

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self.span(sql):
            return self.conn.execute(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
        with self.span(sql) as span:
            rows = [dict(r) for r in self.conn.execute(sql, params).fetchall()]
            if span.is_recording():
                span.set_attribute("db.response.returned_rows", len(rows))
            return rows

    def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict | None:
        with self.span(sql):
            row = self.conn.execute(sql, params).fetchone()
            return dict(row) if row else None
