"""The fault catalogue: the single source of truth for code, admin API, CLI and docs.

Each kind names the services it may target, a pydantic model of its parameters (whose JSON
schema drives the instructor form and the docs table) and the symptom a learner should see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stack.common.settings import ServiceName

HTTP_SERVICES = tuple(s for s in ServiceName if s is not ServiceName.FRONTEND)
# The worker serves no user requests: request-level faults would touch nothing there
# (queue_stall is its fault).
REQUEST_SERVICES = tuple(s for s in HTTP_SERVICES if s is not ServiceName.WORKER)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyParams(_Params):
    ms: int = Field(500, ge=1, le=30_000, description="added delay per request (ms)")
    jitter_ms: int = Field(0, ge=0, le=10_000, description="uniform random extra delay (ms)")


class ErrorParams(_Params):
    status: Literal[500, 503] = Field(500, description="HTTP status the target answers with")


class TimeoutParams(_Params):
    hang_ms: int = Field(
        7_000, ge=100, le=60_000, description="how long the target hangs (past its caller's 5 s)"
    )


class CpuBurnParams(_Params):
    ms: int = Field(50, ge=1, le=2_000, description="CPU time burnt per request (ms)")


class MemoryLeakParams(_Params):
    mb_per_minute: int = Field(30, ge=1, le=500, description="memory retained per minute (MB)")
    cap_mb: int = Field(200, ge=1, le=1_000, description="stop growing at this many MB")


class QueueStallParams(_Params):
    mode: Literal["pause", "slow"] = Field("pause", description="stop consuming, or slow down")
    delay_ms: int = Field(1_000, ge=1, le=60_000, description="extra time per job in slow mode")


class SlowDbParams(_Params):
    lock_ms: int = Field(
        0,
        ge=0,
        le=2_000,
        description="also hold the write lock in bursts this long (ms), like a batch job",
    )


class LlmRateLimitParams(_Params):
    retry_after_s: int = Field(1, ge=1, le=60, description="Retry-After the provider sends (s)")


class RedisLatencyParams(_Params):
    ms: int = Field(100, ge=1, le=10_000, description="added delay per Redis command (ms)")


class BadReleaseParams(_Params):
    version: str = Field("1.1.0-rc1", min_length=1, max_length=40, pattern=r"^[\w.\-+]+$")
    intent: str = Field("latency_percentile", description="the intent the regression breaks")


@dataclass(frozen=True)
class FaultKind:
    name: str
    description: str
    symptom: str
    params: type[_Params]
    targets: tuple[ServiceName, ...]
    # Request-level kinds honour probability and attendee/session scope per request;
    # process-level kinds (memory_leak, slow_db, bad_release) act on the whole process.
    per_request: bool = True


FAULT_KINDS: dict[str, FaultKind] = {
    k.name: k
    for k in (
        FaultKind(
            "latency",
            "Adds a fixed delay plus jitter to the target's requests.",
            "The target's server spans are slower by the injected delay; p95 climbs.",
            LatencyParams,
            REQUEST_SERVICES,
        ),
        FaultKind(
            "error",
            "The target answers 500 or 503 instead of handling the request.",
            "Error spans on the target; callers answer 502 naming it.",
            ErrorParams,
            REQUEST_SERVICES,
        ),
        FaultKind(
            "timeout",
            "The target hangs past its caller's read timeout.",
            "Callers give up after their timeout and answer 504 naming the target.",
            TimeoutParams,
            tuple(s for s in REQUEST_SERVICES if s is not ServiceName.GATEWAY),
        ),
        FaultKind(
            "cpu_burn",
            "Burns real CPU time on every request to the target.",
            "Host CPU rises; the target's spans slow down under load.",
            CpuBurnParams,
            REQUEST_SERVICES,
        ),
        FaultKind(
            "memory_leak",
            "The target retains memory at a steady rate until cleared (capped).",
            "The target's RSS climbs in host metrics (`process.memory.usage` with the target's "
            "`service.name`) and drops back after clear.",
            MemoryLeakParams,
            HTTP_SERVICES,
            per_request=False,
        ),
        FaultKind(
            "queue_stall",
            "The queue worker pauses, or slows down per job.",
            "Stream length and pending count grow; job completion latency climbs "
            "while the gateway stays fast.",
            QueueStallParams,
            (ServiceName.WORKER,),
        ),
        FaultKind(
            "slow_db",
            "Drops the indexes the storage queries rely on (restored on clear).",
            "Storage DB client spans dominate history and result reads.",
            SlowDbParams,
            (ServiceName.STORAGE,),
            per_request=False,
        ),
        FaultKind(
            "llm_rate_limit",
            "The LLM provider answers 429 with Retry-After.",
            "429s on external-api spans; query-service retries them (span events).",
            LlmRateLimitParams,
            (ServiceName.EXTERNAL_API,),
        ),
        FaultKind(
            "redis_latency",
            "Adds latency to every Redis command the target sends.",
            "Redis client spans of the target are slow.",
            RedisLatencyParams,
            tuple(
                s
                for s in HTTP_SERVICES
                if s not in (ServiceName.VALIDATION, ServiceName.PROCESSING, ServiceName.STORAGE)
            ),
        ),
        FaultKind(
            "bad_release",
            "The target restarts as a new service.version whose regression breaks one intent.",
            "service.version changes on the target's spans; only the chosen intent fails.",
            BadReleaseParams,
            (ServiceName.QUERY,),
            per_request=False,
        ),
    )
}


def catalogue() -> list[dict[str, object]]:
    """The catalogue as the admin API serves it (and the docs table is generated from)."""
    return [
        {
            "kind": k.name,
            "description": k.description,
            "symptom": k.symptom,
            "targets": [t.value for t in k.targets],
            "per_request": k.per_request,
            "params_schema": k.params.model_json_schema(),
        }
        for k in FAULT_KINDS.values()
    ]
