"""Structured logging: one JSON object per line on stdout, with the active trace and span ids.

The OTLP log handler (added by telemetry setup) ships the same records to the collector.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

import orjson
from opentelemetry import trace


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class DeferredStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes INFO and below at most every `delay_s`, in one write.

    Whoever reads a service's stdout (supervisord natively, the Docker engine in compose) wakes
    for every write: at lab rates two INFO lines a question woke supervisord about twice a
    question, 2 % of the stack's CPU per question (issue 19). Lines are written in order; a
    WARNING or worse writes everything pending at once, as does a record from a thread
    without a running event loop, and logging's exit hook flushes the rest. A process killed
    outright loses at most `delay_s` of INFO lines (their OTLP copies are batched anyway).
    """

    def __init__(self, stream: TextIO, delay_s: float = 0.5) -> None:
        super().__init__(stream)
        self.delay_s = delay_s
        self._pending: list[str] = []
        # The loop a flush is scheduled on; a loop that stopped before it ran (tests) is not
        # the next one's, so the next line arms again.
        self._armed: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or self.delay_s <= 0:
                self.flush()
            else:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # not on an event loop's thread: nothing would flush
                    self.flush()
                    return
                if self._armed is not loop:
                    self._armed = loop
                    loop.call_later(self.delay_s, self._flush_later)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_later(self) -> None:
        self._armed = None
        self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            if self._pending:
                lines, self._pending = "".join(self._pending), []
                self.stream.write(lines)
            if hasattr(self.stream, "flush"):
                self.stream.flush()


def setup_logging(service: str, level: str = "INFO", delay_s: float = 0.5) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = DeferredStreamHandler(sys.stdout, delay_s)
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Access logs at hundreds of requests/s would dominate the CPU; spans carry that story.
    logging.getLogger("uvicorn.access").disabled = True


def flush() -> None:
    """Write the lines the root handlers hold: a service's last act before it exits, which a
    process that ends by a signal would otherwise skip (logging's exit hook does not run)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
