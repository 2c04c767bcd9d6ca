"""validation-service: the DataPrime validator over HTTP."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import BaseModel, Field

from stack.common.problems import Problem
from stack.common.service import Service
from stack.common.settings import ServiceName, Settings
from stack.dataprime import validate
from stack.dataprime.parser import precheck


class ValidateRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000)


def create_app(settings: Settings | None = None, *, redis: aioredis.Redis | None = None) -> FastAPI:
    """The validation service's app (run by `python -m stack.run validation-service`)."""
    service = Service(ServiceName.VALIDATION, settings=settings, redis=redis)

    @service.app.post("/validate")
    def validate_query(body: ValidateRequest) -> dict[str, Any]:
        # A plain `def`: parsing is CPU work, so it runs in the threadpool and the event loop
        # keeps answering other requests (health checks included) meanwhile.
        refused = precheck(body.query)
        if refused is not None:
            # Input the language cannot hold (NUL bytes, nesting past the limit, invalid
            # UTF-8): a 422 naming the field and the reason, refused before the parser runs.
            raise Problem(
                422,
                f"query: {refused.message}",
                service=service.name.value,
                errors=[
                    {
                        "field": "query",
                        "reason": refused.message,
                        "line": refused.line,
                        "column": refused.column,
                    }
                ],
                slug="query-refused",
            )
        return validate(body.query).to_dict()

    return service.app
