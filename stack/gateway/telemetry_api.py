"""The UI's view of the kit's own telemetry: live RED series per service and trace waterfalls.

Both read the spans the collector writes locally (stack.common.tracestore) — offline the
file exporter's output, online the local copy it keeps beside the Coralogix export — so the
same page works natively and in Docker, with and without Coralogix. Nothing runs until a
page asks: the first request starts a tail that stops LEASE_SECONDS after the last one.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse

from stack.common.faults import identity, timeline
from stack.common.problems import Problem
from stack.common.red import HISTORY_SECONDS
from stack.common.settings import ServiceName, Settings
from stack.common.tracestore import TraceStore, valid_trace_id

# What the charts show: the eight services of the assistant (the frontend only serves files).
CHARTED = [s.value for s in ServiceName if s is not ServiceName.FRONTEND]


def telemetry_dir(settings: Settings, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    raw = env.get("TELEMETRY_DIR")
    return Path(raw) if raw else settings.data_dir / "telemetry"


def settle_seconds(env: dict[str, str] | None = None) -> float:
    """How long after a span starts it is safely in the file: the SDK's batch delay
    (OTEL_BSP_SCHEDULE_DELAY, 5 s by default) + the collector's batch timeout (1 s) + the
    file exporter's flush (1 s) + one tail poll (1 s)."""
    env = dict(os.environ) if env is None else env
    try:
        bsp_ms = float(env.get("OTEL_BSP_SCHEDULE_DELAY") or 5000)
    except ValueError:
        bsp_ms = 5000.0
    return bsp_ms / 1000 + 3.0


def build_store(settings: Settings) -> TraceStore:
    return TraceStore(telemetry_dir(settings), services=CHARTED, settle_seconds=settle_seconds())


class _JSON(JSONResponse):
    """orjson straight to bytes: these answers are thousands of floats, and FastAPI's default
    encoder (jsonable_encoder, then json) spends most of the chart endpoint's time on them.
    A JSONResponse subclass, so the OpenAPI document says JSON (not "a string")."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _object(required: list[str]) -> dict[int | str, dict[str, Any]]:
    """The 200 answer's schema in the OpenAPI document: a JSON object with these keys."""
    schema = {"type": "object", "required": required, "additionalProperties": True}
    return {200: {"content": {"application/json": {"schema": schema}}}}


def telemetry_router(redis: aioredis.Redis, store: TraceStore) -> APIRouter:
    router = APIRouter(tags=["telemetry"], default_response_class=_JSON)

    @router.get(
        "/api/telemetry/red",
        summary="Requests/s, error ratio and p95 per service over the last minutes",
        responses=_object(["step", "now", "settle_seconds", "attendee", "tailing", "faults"]),
    )
    async def red(
        request: Request,
        mine: Annotated[bool, Query(description="only spans with my workshop.attendee")] = False,
        window: Annotated[int, Query(ge=60, le=HISTORY_SECONDS)] = HISTORY_SECONDS,
    ) -> _JSON:
        attendee = None
        if mine:
            # From the header itself: these paths skip the fault middleware that sets it.
            attendee, _ = identity(request.headers.get("baggage", ""))
            if not attendee:
                raise Problem(
                    422,
                    "only-my-traffic needs your name: send baggage `workshop.attendee=<you>` "
                    "(the UI does once you set your name)",
                    errors=[{"field": "mine", "reason": "no workshop.attendee in the baggage"}],
                )
        store.touch()
        out = store.red_series(attendee=attendee, window=window)
        out["attendee"] = attendee
        out["tailing"] = store.tailing
        out["faults"] = await timeline.markers(redis, since=time.time() - window, attendee=attendee)
        return _JSON(out)

    @router.get(
        "/api/traces/{trace_id}",
        summary="One trace as a waterfall (spans, services, errors, fault markers)",
        responses={
            **_object(["trace_id", "state", "spans", "services"]),
            404: {"description": "no span of this trace is known"},
        },
    )
    async def trace(trace_id: str) -> _JSON:
        tid = trace_id.lower()
        if not valid_trace_id(tid):
            raise Problem(
                422,
                f"`{trace_id[:64]}` is not a trace id: expected 32 hexadecimal characters",
                errors=[
                    {"field": "trace_id", "reason": "must match ^[0-9a-f]{32}$, not all zeros"}
                ],
            )
        store.touch()
        # Read what arrived since the last poll so a fresh trace shows at once (off the loop:
        # decoding new lines is CPU work).
        await asyncio.to_thread(store.scan)
        found = await asyncio.to_thread(store.trace, tid)
        if found is None:
            raise Problem(
                404,
                f"no span of trace `{tid}` in the local telemetry: it is unknown, or older than "
                "what the collector's rotated files keep",
            )
        return _JSON(found)

    return router
