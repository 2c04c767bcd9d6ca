"""When each fault started and stopped: a capped Redis stream the charts mark on their time axis.

`fault:events` gets one entry when a fault is added and one when it is cleared (by id, all at
once, or by a reset). A fault that simply expires writes nothing: its stop is its `expires_at`,
carried in the start entry. The stream is capped (MAXLEN ~1000), so it costs a few kB.
"""

from __future__ import annotations

import time
from typing import Any, cast

import redis.asyncio as aioredis

from stack.common.faults.model import Fault
from stack.common.redis import FAULT_PREFIX, StreamEntries

EVENTS_KEY = f"{FAULT_PREFIX}events"
MAXLEN = 1000


def start_fields(fault: Fault) -> dict[str, str]:
    return {
        "event": "start",
        "id": fault.id,
        "kind": fault.kind,
        "target": fault.target,
        "scope": fault.scope,
        "scope_value": fault.scope_value or "",
        "at": f"{fault.created_at:.3f}",
        "expires_at": f"{fault.expires_at:.3f}",
    }


def clear_fields(fault_id: str, at: float | None = None) -> dict[str, str]:
    return {"event": "clear", "id": fault_id, "at": f"{at or time.time():.3f}"}


def record(pipe: Any, fields: dict[str, str]) -> None:
    """Queue one event on a Redis pipeline (the caller's transaction)."""
    pipe.xadd(EVENTS_KEY, fields, maxlen=MAXLEN, approximate=True)


async def markers(
    redis: aioredis.Redis, *, since: float, attendee: str | None = None
) -> list[dict[str, Any]]:
    """Faults active at any time after `since`: kind, target, scope, start and end (None while
    active), and why it ended. With `attendee`, only faults that could touch that attendee."""
    start_id = f"{int(since * 1000) - 2 * 7200 * 1000}-0"  # a fault lives ≤ 2 h
    entries = cast(StreamEntries, await redis.xrange(EVENTS_KEY, min=start_id, max="+"))
    faults: dict[str, dict[str, Any]] = {}
    for _, f in entries:
        fid = f.get("id", "")
        if f.get("event") == "start":
            faults[fid] = {
                "id": fid,
                "kind": f.get("kind", ""),
                "target": f.get("target", ""),
                "scope": f.get("scope", "all"),
                "scope_value": f.get("scope_value") or None,
                "start": float(f.get("at", 0)),
                "end": float(f.get("expires_at", 0)),
                "ended_by": "expired",
            }
        elif f.get("event") == "clear" and fid in faults:
            at = float(f.get("at", 0))
            if at < faults[fid]["end"]:
                faults[fid]["end"] = at
                faults[fid]["ended_by"] = "cleared"
    now = time.time()
    out = []
    for m in faults.values():
        if m["end"] < since:
            continue
        if m["end"] > now:
            m["end"], m["ended_by"] = None, None
        if (
            attendee is not None
            and m["scope"] != "all"
            and not (m["scope"] == "attendee" and m["scope_value"] == attendee)
        ):
            continue
        out.append(m)
    return sorted(out, key=lambda m: m["start"])
