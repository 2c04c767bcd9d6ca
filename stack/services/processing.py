"""processing-service: executes a DataPrime query against the synthetic data set (CPU-bound)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from opentelemetry import trace
from pydantic import BaseModel, Field

from stack.common.problems import Problem
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.dataprime import NotExecuted, QueryError, execute


class ExecuteRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000)
    preview: int = Field(20, ge=1, le=200)


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The processing service's app (run by `python -m stack.run processing-service`)."""
    service = Service(ServiceName.PROCESSING, settings=settings, redis=redis)
    app = service.app

    @service.on_startup
    async def _warm() -> None:
        # Build the synthetic data set now, not on the first user's request.
        execute("source spans | limit 1")
        execute("source logs | limit 1")

    @app.post("/execute")
    async def execute_query(body: ExecuteRequest) -> dict[str, Any]:
        try:
            result = execute(body.query, preview=body.preview)
        except NotExecuted as exc:
            # Valid DataPrime the local engine does not run: an answer of its own kind, not an
            # error (the worker stores it as done; the UI shows it as a note).
            trace.get_current_span().set_attribute("dataprime.not_executed", exc.construct)
            return {
                **exc.to_dict(),
                "columns": [],
                "rows": [],
                "rows_scanned": 0,
                "rows_matched": 0,
                "elapsed_ms": 0.0,
            }
        except QueryError as exc:
            raise Problem(422, str(exc), slug="query-error", service=service.name.value) from exc
        span = trace.get_current_span()
        span.set_attribute("dataprime.rows_scanned", result.rows_scanned)
        span.set_attribute("dataprime.rows_matched", result.rows_matched)
        return result.to_dict()

    return app
