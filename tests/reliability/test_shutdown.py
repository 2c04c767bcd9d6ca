"""SIGTERM under load: in-flight requests finish or fail as clean problems, the process exits
within SHUTDOWN_GRACE_SECONDS, supervisord restarts it, and its last spans reach the collector."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from stack.client import baggage_header
from stack.common.procs import pid_alive
from stack.common.settings import ServiceName
from stack.native.supervisor import http_ok
from tests.helpers import eventually, kill_program, wait_program_running
from tests.reliability import is_clean_problem, steady_load

GRACE = 8.0  # SHUTDOWN_GRACE_SECONDS in the test stack


def _spans_with(telemetry_dir: Path, value: str) -> dict[str, int]:
    """service.name → number of spans carrying `value` in any attribute."""
    found: dict[str, int] = {}
    for path in telemetry_dir.glob("traces*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            if value not in line:
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                service = next(
                    (
                        a["value"].get("stringValue")
                        for a in rs["resource"]["attributes"]
                        if a["key"] == "service.name"
                    ),
                    "?",
                )
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        if value in json.dumps(span.get("attributes", [])):
                            found[service] = found.get(service, 0) + 1
    return found


async def _marked_requests(base: str, attendee: str, n: int) -> list[int]:
    headers = {"baggage": baggage_header(attendee, synthetic=True)}
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), headers=headers
    ) as session:

        async def one(i: int) -> int:
            async with session.post(
                f"{base}/api/queries", json={"question": f"errors from cart ({attendee} {i})"}
            ) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(i) for i in range(n)))


@pytest.mark.parametrize("target", [ServiceName.QUERY, ServiceName.GATEWAY])
def test_sigterm_under_load_drains_exits_in_grace_and_flushes(stack, target) -> None:
    base = stack.url(ServiceName.GATEWAY)
    attendee = f"shutdown-{uuid.uuid4().hex[:8]}"
    timing: dict[str, float] = {}

    async def scenario():
        load = asyncio.create_task(
            steady_load(base, rate=30, duration=10, timeout=15, tag=f"sigterm {target.value}")
        )
        await asyncio.sleep(3)
        # Requests that complete right before the SIGTERM: their spans must not be lost.
        marked = await _marked_requests(base, attendee, 5)
        pid = await asyncio.to_thread(kill_program, stack.cfg, target.value, signal.SIGTERM)
        sent = time.monotonic()
        while pid_alive(pid) and time.monotonic() - sent < GRACE + 10:
            await asyncio.sleep(0.05)
        timing["exit_seconds"] = time.monotonic() - sent
        timing["pid"] = pid
        return marked, await load

    marked, result = asyncio.run(scenario())
    assert marked == [202] * 5
    new_pid = wait_program_running(stack.cfg, target.value, int(timing["pid"]), timeout=30)
    eventually(
        lambda: http_ok(f"{stack.url(target)}/ready"), 30, what=f"{target.value} ready again"
    )

    rejected = result.rejected
    no_answer = [a for a in rejected if a.status == 0]
    refused = [a for a in no_answer if a.error == "ClientConnectorError"]
    dropped = [a for a in no_answer if a.error != "ClientConnectorError"]
    unclean = [a for a in rejected if a.status != 0 and not is_clean_problem(a)]
    print(
        f"{target.value}: exit after SIGTERM {timing['exit_seconds']:.2f} s "
        f"(grace {GRACE:.0f} s), restarted pid {new_pid}; answers {result.by_status()}; "
        f"refused before accept={len(refused)}, dropped after accept={len(dropped)} "
        f"{sorted({f'{a.error}: {a.detail}' for a in dropped})}"
    )
    assert timing["exit_seconds"] <= GRACE + 2  # the grace period plus the telemetry flush
    assert not unclean, [(a.status, a.text[:200]) for a in unclean[:5]]
    assert all(a.status in (202, 502, 503, 504) for a in rejected if a.status)
    if target is ServiceName.GATEWAY:
        # The client talks to the gateway itself: while it is down new connections are refused
        # (never accepted). Measured: at most a connection or two that sat in the kernel's
        # accept backlog when uvicorn closed its listener are reset within ~50 ms; a request
        # the app had accepted is never cut (all resets fail fast, none after processing).
        assert len(dropped) <= max(3, len(result.answers) // 50), dropped[:5]
        assert all(a.seconds < 1.0 for a in dropped), [round(a.seconds, 2) for a in dropped]
    else:
        # The gateway stays up: every request gets an HTTP answer.
        assert not no_answer, [(a.error, round(a.seconds, 2)) for a in no_answer[:5]]

    if stack.collector:
        spans = eventually(
            lambda: _spans_with(stack.telemetry_dir, attendee).get(target.value),
            20,
            0.5,
            what=f"spans of {target.value} for {attendee} in the telemetry files",
        )
        print(f"spans flushed by {target.value} for the marked requests: {spans}")
