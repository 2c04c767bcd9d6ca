"""validation-service: the DataPrime validator over HTTP."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from stack.common.service import Service
from stack.common.settings import ServiceName
from stack.dataprime import validate

service = Service(ServiceName.VALIDATION)
app = service.app


class ValidateRequest(BaseModel):
    query: str = Field(min_length=1, max_length=20_000)


@app.post("/validate")
async def validate_query(body: ValidateRequest) -> dict[str, Any]:
    return validate(body.query).to_dict()
