"""A shared room: room events, attendee progress and the online-check proxy's rules.

Room events are the faults that cannot be scoped to one attendee (they act on a whole
process): the instructor starts them for the whole room and attendees' labs wait for them.
On the wire a room event is simply an active fault with scope `all`: whatever created it —
`POST /api/admin/faults` with scope `all` or `POST /api/admin/room/events` — it is listed by
`GET /api/room/events`.

Progress: each lab reports, under its attendee id, the step it reached and its check
verdicts; the gateway keeps one Redis hash per attendee (`room:progress:<attendee>`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable
from typing import Any, Literal, cast

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from stack.common.faults.model import Fault
from stack.common.faults.registry import FAULT_KINDS
from stack.common.redis import Entry, Hash, unlink_matching

ROOM_PREFIX = "room:"
PROGRESS_PREFIX = f"{ROOM_PREFIX}progress:"
PROGRESS_TTL_SECONDS = 7 * 24 * 3600
CHECK_CACHE_PREFIX = f"{ROOM_PREFIX}check:"
CHECK_CACHE_SECONDS = 30
ATTENDEE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# queue_stall is catalogued per request, but its pause stops the one worker every attendee's
# jobs go through: in a shared room it is a room event like the process-level kinds.
_WHOLE_PROCESS_EXTRA = frozenset({"queue_stall"})


def is_room_event_kind(kind: str) -> bool:
    """Kinds that act on a whole process, so in a room only the instructor may start them."""
    k = FAULT_KINDS.get(kind)
    return k is not None and (not k.per_request or kind in _WHOLE_PROCESS_EXTRA)


def room_event_kinds() -> list[str]:
    return [k for k in FAULT_KINDS if is_room_event_kind(k)]


def room_event(fault: Fault) -> dict[str, Any]:
    """A room event as `GET /api/room/events` lists it (no params: they may steer a lab)."""
    return {
        "id": fault.id,
        "kind": fault.kind,
        "target": fault.target,
        "started": fault.created_at,
        "expires": fault.expires_at,
        "remaining_seconds": round(fault.remaining(), 1),
    }


def room_events(faults: list[Fault]) -> list[dict[str, Any]]:
    return [room_event(f) for f in faults if f.scope == "all" and f.active()]


class RoomEventIn(BaseModel):
    """`POST /api/admin/room/events`: start a room event for everybody."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="a fault kind from the catalogue")
    target: str | None = Field(None, description="default: the kind's only/first target")
    params: dict[str, Any] = Field(default_factory=dict)
    duration_s: int = Field(300, ge=1, le=7200)

    def fault_fields(self) -> dict[str, Any]:
        kind = FAULT_KINDS.get(self.kind)
        target = self.target or (kind.targets[0].value if kind else "")
        return {
            "kind": self.kind,
            "target": target,
            "params": self.params,
            "scope": "all",
            "ttl_seconds": self.duration_s,
        }


# ---- progress ------------------------------------------------------------------------------
class ProgressIn(BaseModel):
    """What a lab reports: the step it reached, or one check's verdict."""

    model_config = ConfigDict(extra="forbid")

    attendee: str = Field(pattern=ATTENDEE_ID.pattern)
    lab: str = Field(max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    step: str = Field(max_length=60, description="e.g. started, traffic, waiting, checking")
    detail: str = Field("", max_length=200)
    question: str | None = Field(None, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    verdict: Literal["passed", "failed", "cannot check"] | None = None


async def record_progress(redis: aioredis.Redis, p: ProgressIn) -> dict[str, Any]:
    key = f"{PROGRESS_PREFIX}{p.attendee}"
    now = time.time()
    fields: Entry = {
        "attendee": p.attendee,
        "lab": p.lab,
        "step": p.step,
        "detail": p.detail,
        "updated": now,
    }
    if p.question and p.verdict:
        fields[f"check:{p.lab}:{p.question}"] = orjson.dumps({"verdict": p.verdict, "at": now})
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)
        pipe.expire(key, PROGRESS_TTL_SECONDS)
        await pipe.execute()
    return {"attendee": p.attendee, "recorded": now}


async def room_progress(redis: aioredis.Redis) -> list[dict[str, Any]]:
    """Every attendee's last step and check verdicts, attendees sorted by id."""
    out = []
    async for key in redis.scan_iter(match=f"{PROGRESS_PREFIX}*", count=500):
        raw = await cast("Awaitable[Hash]", redis.hgetall(key))
        if not raw:
            continue
        checks: dict[str, dict[str, Any]] = {}
        for k, v in raw.items():
            if k.startswith("check:"):
                _, lab, question = k.split(":", 2)
                checks[f"{lab}/{question}"] = orjson.loads(v)
        out.append(
            {
                "attendee": raw.get("attendee", key.removeprefix(PROGRESS_PREFIX)),
                "lab": raw.get("lab"),
                "step": raw.get("step"),
                "detail": raw.get("detail", ""),
                "updated": float(raw.get("updated") or 0),
                "checks": dict(sorted(checks.items())),
                "passed": sum(c["verdict"] == "passed" for c in checks.values()),
                "failed": sum(c["verdict"] == "failed" for c in checks.values()),
            }
        )
    return sorted(out, key=lambda r: r["attendee"])


async def clear_progress(redis: aioredis.Redis) -> int:
    return await unlink_matching(redis, f"{ROOM_PREFIX}*")


# ---- the online-check proxy ---------------------------------------------------------------
class CheckIn(BaseModel):
    """`POST /api/room/check`: one online check, run by the gateway with the room's key."""

    model_config = ConfigDict(extra="forbid")

    api: Literal["dataprime", "metrics"] = "dataprime"
    query: str = Field(min_length=1, max_length=4000)
    start: float = Field(gt=0, description="Unix seconds")
    end: float = Field(gt=0, description="Unix seconds")
    step_s: int = Field(15, ge=1, le=3600, description="metrics: the range query's step")


def attendee_filter(attendee: str) -> str:
    return f"$d.tags['workshop.attendee'] == '{attendee}'"


def check_scope_error(body: CheckIn, attendee: str | None) -> tuple[str, str] | None:
    """Why an attendee may not run this query through the room's key, or None.

    A DataPrime check must filter on the caller's own attendee id (the lab's queries all do),
    so the room's key never reads another attendee's data; metrics are per host and carry no
    attendee, so only the kit's host metrics may be asked.
    """
    if body.end <= body.start:
        return "end", "must be after start"
    if body.end - body.start > 6 * 3600:
        return "end", "the window may span at most 6 hours"
    if attendee is None or not ATTENDEE_ID.match(attendee):
        return "baggage", "send `baggage: workshop.attendee=<your id>`"
    if body.api == "dataprime":
        if not body.query.lstrip().startswith("source spans"):
            return "query", "only `source spans` queries are proxied"
        if attendee_filter(attendee) not in body.query:
            return "query", f"must filter on your attendee id: {attendee_filter(attendee)}"
    elif not re.search(r"\bsystem_[a-z_]+\b", body.query):
        return "query", "only the host metrics (system_*) are proxied"
    return None


def check_cache_key(body: CheckIn) -> str:
    # Windows are rounded to 5 s so attendees re-running a check share one answer.
    start, end = int(body.start // 5 * 5), int(body.end // 5 * 5)
    raw = f"{body.api}\n{start}\n{end}\n{body.step_s}\n{body.query}".encode()
    return CHECK_CACHE_PREFIX + hashlib.sha256(raw).hexdigest()
