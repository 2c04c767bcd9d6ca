"""A fault as stored in Redis and answered by the admin API, and the request that creates one."""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stack.common.faults.registry import FAULT_KINDS
from stack.common.settings import ServiceName

DEFAULT_TTL_SECONDS = 600
MAX_TTL_SECONDS = 7200

Scope = Literal["all", "attendee", "session"]


class FaultSpec(BaseModel):
    """What an instructor (or a lab) asks for."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="a kind from the catalogue")
    target: str = Field(description="the service.name the fault acts on")
    params: dict[str, Any] = Field(default_factory=dict)
    probability: float = Field(1.0, ge=0.0, le=1.0)
    scope: Scope = "all"
    scope_value: str | None = Field(None, max_length=100, description="attendee or session id")
    ttl_seconds: int = Field(DEFAULT_TTL_SECONDS, ge=1, le=MAX_TTL_SECONDS)

    @model_validator(mode="after")
    def _check(self) -> FaultSpec:
        kind = FAULT_KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"kind: unknown fault kind `{self.kind}`; see the catalogue")
        if self.target not in {t.value for t in kind.targets}:
            allowed = ", ".join(t.value for t in kind.targets)
            raise ValueError(
                f"target: `{self.target}` cannot take `{self.kind}` (one of: {allowed})"
            )
        try:
            self.params = kind.params.model_validate(self.params).model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "params"
            raise ValueError(f"params.{field}: {first['msg']}") from None
        if self.scope != "all" and not self.scope_value:
            raise ValueError(f"scope_value: required when scope is `{self.scope}`")
        if self.scope != "all" and not kind.per_request:
            raise ValueError(f"scope: `{self.kind}` acts on the whole process; use scope `all`")
        return self


class Fault(FaultSpec):
    id: str
    created_at: float
    expires_at: float
    created_by: str = "admin"

    @classmethod
    def create(cls, spec: FaultSpec, created_by: str = "admin") -> Fault:
        now = time.time()
        return cls(
            **spec.model_dump(),
            id=f"{spec.kind}-{secrets.token_hex(3)}",
            created_at=now,
            expires_at=now + spec.ttl_seconds,
            created_by=created_by,
        )

    @property
    def service(self) -> ServiceName:
        return ServiceName(self.target)

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.expires_at - (now or time.time()))

    def active(self, now: float | None = None) -> bool:
        return self.remaining(now) > 0

    def matches(self, attendee: str | None, session: str | None) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "attendee":
            return attendee == self.scope_value
        return session == self.scope_value

    def public(self) -> dict[str, Any]:
        data = self.model_dump()
        data["remaining_seconds"] = round(self.remaining(), 1)
        return data
