"""A lab's run: the spec's traffic in the background and its fault timeline beside it.

The timeline thread injects each fault step at its offset into the traffic and clears it
after its duration; an attendee's lab without an admin token waits for the instructor's room
event instead of starting a process-wide fault itself. Every fault injected is recorded in
the lab's state (saved at once), so a later check knows the hidden target and window.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from labs.runtime import traffic
from labs.runtime.state import FaultRecord, LabState, fault_window_s
from labs.runtime.traffic import TrafficRun
from stack.client import ApiError, Gateway, require_reachable
from stack.common.faults.registry import FAULT_KINDS

if TYPE_CHECKING:
    from labs.runtime.lab import Lab

ROOM_EVENT_POLL_S = float(os.environ.get("LAB_ROOM_EVENT_POLL", "1"))


def traffic_plan(lab: Lab, users: int | None, duration: float | None) -> tuple[int, float]:
    """Users and seconds of a lab's traffic: the spec's (its short mode's), or the override.
    An override that runs nothing is refused, naming it (0 users used to mean the spec's;
    -3 ran no user at all for the lab's whole duration)."""
    if users is not None and users < 1:
        raise ValueError(f"users: {users} users send nothing; give at least 1")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration: {duration} s runs nothing; give more than 0 seconds")
    t = lab.spec.traffic
    base_users, base_duration = (
        (t.short.users, t.short.duration_s) if lab.short_mode else (t.users, t.duration_s)
    )
    return users or base_users, float(duration or base_duration)


def room_attendees(lab: Lab) -> list[str]:
    n = lab.spec.traffic.attendees
    return [lab.attendee] if n == 1 else [f"{lab.attendee}-{i + 1:02d}" for i in range(n)]


def start_traffic(
    lab: Lab,
    users: int | None = None,
    duration: float | None = None,
    attendees: list[str] | None = None,
) -> TrafficRun:
    """Start the spec's traffic in the background (returns at once)."""
    if lab.traffic and lab.traffic.running:
        raise RuntimeError("traffic is already running: lab.live() or lab.stop()")
    users, duration = traffic_plan(lab, users, duration)
    # A stopped stack would fail every request for the lab's whole run, then look finished.
    require_reachable(lab.gateway_url)
    who = attendees or lab.room_attendees()
    admin_token = lab._admin_token
    lab.traffic = traffic.start(
        lab.gateway_url,
        users=users,
        duration_s=duration,
        attendees=who,
        engine=lab.env.get("LAB_TRAFFIC_ENGINE") or lab.spec.traffic.engine,
        scenario=lab.spec.traffic.scenario,
        think_s=lab.spec.traffic.think_s,
        env={**lab.env, **({"ADMIN_TOKEN": admin_token} if admin_token else {})},
    )
    lab.state = LabState(
        lab=lab.spec.name,
        attendee=lab.attendee,
        attendees=who,
        traffic_start=lab.traffic.started_at,
    )
    lab.save_state()
    return lab.traffic


def timing(lab: Lab, step: int) -> tuple[float, float]:
    """(offset, duration) of fault step ``step`` in this lab's mode."""
    f = lab.spec.faults[step]
    return (f.short.offset_s, f.short.duration_s) if lab.short_mode else (f.offset_s, f.duration_s)


def traffic_deadline(lab: Lab) -> float | None:
    run = lab.traffic
    return run.started_at + run.duration_s if run else None


def inject(lab: Lab, step: int | None = None, *, attendee: str | None = None) -> list[FaultRecord]:
    """Inject the spec's fault steps now (all of them, or one); returns what was created."""
    steps = range(len(lab.spec.faults)) if step is None else [step]
    created = []
    for i in steps:
        f = lab.spec.faults[i]
        if f.room_event and not lab._admin_token:
            # An attendee cannot start a process-wide fault: the instructor does.
            ev = lab.wait_for_room_event(i, until=traffic_deadline(lab))
            if ev is None:
                continue
            record = FaultRecord(
                i, f.kind, str(ev.get("target")), ev.get("id"), time.time(), None, "room"
            )
            lab.state.faults.append(record)
            created.append(record)
            continue
        target = lab._random.choice(f.candidates) if f.target == "hidden" else f.target
        _offset, duration = timing(lab, i)
        mine = lab.state.attendees or [lab.attendee]
        scope_value = attendee or (mine[0] if f.scope == "attendee" else None)
        if not lab._admin_token and FAULT_KINDS[f.kind].per_request:
            # No admin token (an attendee's kernel): ask for a fault scoped to ourselves;
            # the gateway allows it when ATTENDEE_FAULTS is on and we send no token.
            scope_value = scope_value or mine[0]
        scope = "attendee" if scope_value else "all"
        gateway = (
            lab.gateway
            if lab._admin_token or scope_value == lab.attendee
            else Gateway(lab.gateway_url, attendee=scope_value)
        )
        fault = gateway.add_fault(
            f.kind,
            target,
            params=f.params,
            probability=f.probability,
            scope=scope,
            scope_value=scope_value,
            ttl_seconds=int(duration + 30),
        )
        record = FaultRecord(i, f.kind, target, fault["id"], time.time(), None, scope, scope_value)
        lab.state.faults.append(record)
        created.append(record)
    lab.save_state()
    return created


def remove(lab: Lab, record: FaultRecord) -> None:
    if record.scope == "room":
        # The instructor's room event: this lab stops observing it, never clears it.
        if record.end is None:
            record.end = time.time()
            lab.save_state()
        return
    if record.id and record.end is None:
        try:
            lab.gateway.remove_fault(record.id)
        except ApiError as exc:
            if exc.status != 404:
                raise
        record.end = time.time()
        lab.save_state()


def wait_for_room_event(lab: Lab, step: int, until: float | None = None) -> dict[str, Any] | None:
    """Block until the instructor starts the room event of fault step ``step`` (or
    ``until`` passes / the lab stops); returns the event, or None."""
    f = lab.spec.faults[step]
    label = f"{f.kind}" + (f" on {f.target}" if f.target != "hidden" else "")
    lab.notice(f"waiting for the instructor to start room event {label}")
    lab.report("waiting", f"room event {label}")
    lab.waiting_for = label
    try:
        while not lab._stop.is_set():
            try:
                events = lab.gateway.room_events()
            except (ApiError, OSError):
                events = []
            for ev in events:
                same_target = f.target == "hidden" or ev.get("target") == f.target
                if ev.get("kind") == f.kind and same_target:
                    lab.notice(f"room event {label} started ({ev.get('id')})")
                    return ev
            if until is not None and time.time() >= until:
                lab.notice(f"room event {label} did not start before the traffic ended")
                return None
            lab._stop.wait(ROOM_EVENT_POLL_S)
        return None
    finally:
        lab.waiting_for = None


def run_timeline(lab: Lab) -> None:
    """The timeline thread: each step injected at its offset, cleared after its duration;
    whatever is still on when the lab stops is cleared on the way out."""
    assert lab.traffic is not None
    t0 = lab.traffic.started_at
    events: list[tuple[float, str, int]] = []
    for i in range(len(lab.spec.faults)):
        offset, duration = timing(lab, i)
        events += [(offset, "inject", i), (offset + duration, "remove", i)]
    records: dict[int, FaultRecord] = {}
    try:
        for at, action, i in sorted(events):
            if lab._stop.wait(max(0.0, t0 + at - time.time())):
                break
            if action == "inject":
                if made := lab.inject(i):
                    records[i] = made[0]
            elif i in records:
                lab.remove(records[i])
    finally:
        for rec in records.values():
            lab.remove(rec)


def run(lab: Lab, users: int | None = None, duration: float | None = None) -> TrafficRun:
    """Traffic plus the spec's fault timeline, both in the background."""
    started = lab.start_traffic(users, duration)
    lab.report("traffic", f"{started.users} users for {started.duration_s:.0f} s")
    lab._stop.clear()
    if lab.spec.faults:
        lab._timeline = threading.Thread(
            target=lambda: run_timeline(lab), name="lab-faults", daemon=True
        )
        lab._timeline.start()
    return started


def wait(lab: Lab) -> TrafficRun | None:
    """Block until traffic and the fault timeline are over; record the client figures."""
    if lab.traffic:
        lab.traffic.wait()
    if lab._timeline:
        lab._timeline.join()
    if lab.traffic:
        lab.state.traffic_end = lab.traffic.ended_at or time.time()
        stats = lab.traffic.stats()
        lab.state.client_p95_ms = stats.p95_ms
        fw = fault_window_s(lab.state)
        if fw:
            lab.state.client_p95_fault_ms = lab.traffic.stats(*fw).p95_ms
        lab.save_state()
        lab.report("answering", "traffic finished: answering the questions")
    return lab.traffic


def stop(lab: Lab) -> None:
    lab._stop.set()
    if lab.traffic:
        lab.traffic.stop()
    lab.wait()


def cleanup(lab: Lab) -> dict[str, Any]:
    """Stop traffic, clear this lab's faults (and reset if the spec says so)."""
    lab._stop.set()
    if lab.traffic and lab.traffic.running:
        lab.traffic.stop()
        lab.traffic.wait(20)
    if lab._timeline:
        lab._timeline.join(10)
    cleared = 0
    for rec in lab.state.faults:
        if rec.end is None and rec.id:
            lab.remove(rec)
            cleared += 1
    out: dict[str, Any] = {"faults_cleared": cleared}
    if lab.spec.cleanup.reset:
        out["reset"] = lab.gateway.reset()
    lab.save_state()
    return out
