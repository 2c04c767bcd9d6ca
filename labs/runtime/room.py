"""Room control for instructors: who is sending traffic, faults for the room or one attendee."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from typing import Any

from labs.runtime.lab import Lab
from labs.telemetry import iter_spans

ATTENDEES_QUERY = (
    "source spans | filter $d.tags['workshop.attendee'] != null "
    "&& $l.operationName == 'POST /api/queries' "
    "| groupby $d.tags['workshop.attendee'] as attendee aggregate count() as spans "
    "| orderby spans desc"
)


def attendees_sending(lab: Lab, minutes: float = 5.0) -> dict[str, int]:
    """attendee → span count over the last ``minutes`` (Coralogix when CX_API_KEY is set)."""
    since = time.time() - minutes * 60
    if lab.online:
        from stack.common.dataprime_client import DataPrimeClient

        rows = (
            DataPrimeClient.from_env(lab.env)
            .query(ATTENDEES_QUERY, start=since, end=time.time())
            .rows
        )
        return {str(r.get("attendee")): int(r.get("spans", 0)) for r in rows if r.get("attendee")}
    mark = int(since * 1e9)
    counts = Counter(
        str(s.attributes["workshop.attendee"])
        for s in iter_spans(lab.telemetry_dir)
        if s.start_ns >= mark
        and s.attributes.get("workshop.attendee")
        and s.name == "POST /api/queries"
    )
    return dict(counts.most_common())


def schedule_fault(
    lab: Lab,
    kind: str,
    target: str,
    *,
    params: dict[str, Any] | None = None,
    attendee: str | None = None,
    probability: float = 1.0,
    delay_s: float = 0.0,
    duration_s: float = 60.0,
) -> threading.Thread:
    """Inject a fault after ``delay_s`` for the room (or one attendee), clear it after
    ``duration_s`` (the fault's TTL clears it as well should this process die)."""

    def job() -> None:
        time.sleep(delay_s)
        fault = lab.gateway.add_fault(
            kind,
            target,
            params=params or {},
            probability=probability,
            scope="attendee" if attendee else "all",
            scope_value=attendee,
            ttl_seconds=int(duration_s) + 5,
        )
        time.sleep(duration_s)
        # Already expired, or cleared by a reset: nothing left to do.
        with contextlib.suppress(Exception):
            lab.gateway.remove_fault(fault["id"])

    thread = threading.Thread(target=job, name=f"room-fault-{kind}", daemon=True)
    thread.start()
    return thread


def reset_room(lab: Lab) -> dict[str, Any]:
    """Every fault cleared; queue, cache, sessions and database emptied."""
    return lab.gateway.reset()


def start_room_event(
    lab: Lab,
    kind: str,
    target: str | None = None,
    *,
    params: dict[str, Any] | None = None,
    duration_s: int = 300,
) -> dict[str, Any]:
    """Start a room event (a process-wide fault for everybody); labs waiting for it go on."""
    body: dict[str, Any] = {"params": params or {}, "duration_s": duration_s}
    if target:
        body["target"] = target
    return lab.gateway.start_room_event(kind, **body)


def room_events(lab: Lab) -> list[dict[str, Any]]:
    return lab.gateway.room_events()


def room_progress(lab: Lab) -> list[dict[str, Any]]:
    """Each attendee's lab step and check verdicts, as their labs reported them."""
    return lab.gateway.room_progress()
