"""What a request costs when it arrives alone: the cold-wakeup probe of `workshop bench --budget`.

At lab-traffic rates each service sees a request every few tens of milliseconds and sleeps in
between, so every request starts with caches, TLB and branch predictors that other processes
(and, on a VM, the hypervisor) have used since. The same request sent back to back runs on a
warm core. The probe sends one service's real request both ways and reads the service's CPU
from /proc/<pid>/task/*/schedstat (nanoseconds; the 10 ms clock ticks of /proc/<pid>/stat are
too coarse per request). A plain Python loop in the bench's own process, no kit code in it,
shows how much of the difference is the machine's rather than the kit's.

Issue 19's evidence for what bounds the CPU per question: at lab rates it is roughly the
number of wakeups a question causes across the processes times the cost of a cold wakeup.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

PACED_GAP_S = 0.02  # about how often one service sees a request of one attendee's lab traffic
QUERY = (
    "source logs | filter $m.severity == ERROR | groupby $l.applicationname "
    "aggregate count() as errors | orderby errors desc | limit 10"
)


def _per_thread(pid: int, read: Callable[[str], int]) -> dict[str, int]:
    """`read(task_dir)` for every live thread of `pid`, by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[tid] = read(f"/proc/{pid}/task/{tid}")
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return out


def _cpu_ns(task: str) -> int:
    with open(f"{task}/schedstat") as f:  # nanoseconds on the CPU, first field
        return int(f.read().split()[0])


def task_wakeups(task: str) -> int:
    """Voluntary context switches of one thread (`/proc/<pid>/task/<tid>`)."""
    with open(f"{task}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


def process_cpu_ns(pid: int) -> dict[str, int]:
    """CPU time of each live thread of `pid` so far (ns); `grown` gives the difference."""
    return _per_thread(pid, _cpu_ns)


def voluntary_switches(pid: int) -> dict[str, int]:
    """Times each live thread of `pid` went to sleep and was woken again."""
    return _per_thread(pid, task_wakeups)


def grown(before: dict[str, int], after: dict[str, int]) -> int:
    """How much the threads' counters grew: a thread that ended in between is not counted
    (the services' threads live as long as they do), one that started counts in full."""
    return sum(v - before.get(tid, 0) for tid, v in after.items())


def lab_costs(pids: dict[str, int], lab_traffic: Callable[[], int]) -> dict[str, Any]:
    """Wakeups and CPU (ms) per question of the stack's processes `pids` (supervisord left
    out), in total and per process, idle not subtracted, while `lab_traffic()` runs one
    attendee's lab traffic and returns the questions it asked."""
    procs = {n: p for n, p in pids.items() if n != "supervisord"}
    woke = {n: voluntary_switches(p) for n, p in procs.items()}
    cpu = {n: process_cpu_ns(p) for n, p in procs.items()}
    asked = lab_traffic()
    if not asked:
        raise RuntimeError("the lab traffic asked no question: is the gateway answering?")
    woken = {n: grown(woke[n], voluntary_switches(p)) for n, p in procs.items()}
    ran = {n: grown(cpu[n], process_cpu_ns(p)) for n, p in procs.items()}
    return {
        "wakeups_per_question": round(sum(woken.values()) / asked, 1),
        "ms_per_question": round(sum(ran.values()) / asked / 1e6, 2),
        "questions": asked,
        "per_process": {
            n: {"wakeups": round(woken[n] / asked, 2), "ms": round(ran[n] / asked / 1e6, 3)}
            for n in procs
        },
    }


def python_unit() -> int:
    """A few hundred microseconds of plain Python: dict building and a sum."""
    d = {str(i): i * 2 for i in range(2000)}
    return sum(d.values())


def reference_us(gap_s: float, n: int) -> float:
    """CPU per call of `python_unit` in this thread, back to back (gap 0) or paced."""
    for _ in range(20):
        python_unit()
    t0 = time.thread_time()
    for _ in range(n):
        python_unit()
        if gap_s:
            time.sleep(gap_s)
    return (time.thread_time() - t0) / n * 1e6


async def _service_us(url: str, pid: int, gap_s: float, n: int) -> float:
    import aiohttp

    headers = {"baggage": "workshop.attendee=budget-probe,synthetic_request=true"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def one() -> None:
            async with http.post(url, json={"query": QUERY}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"wakeup probe: {url} answered {resp.status}")

        return await cpu_per_call(one, pid, gap_s, n)


async def cpu_per_call(one: Callable[[], Awaitable[None]], pid: int, gap_s: float, n: int) -> float:
    """CPU (µs) process `pid` spends per `one()` call, `n` calls back to back (gap 0) or one
    every `gap_s`, after 20 unmeasured calls (connection open, the server's code warm)."""
    for _ in range(20):
        await one()
    before = process_cpu_ns(pid)
    for _ in range(n):
        await one()
        if gap_s:
            await asyncio.sleep(gap_s)
    return grown(before, process_cpu_ns(pid)) / n / 1000


def measure(
    url: str,
    pid: int,
    pids: dict[str, int],
    lab_traffic: Callable[[], int],
    lab_seconds: float,
    *,
    n: int = 300,
    rounds: int = 2,
) -> dict[str, Any]:
    """Service CPU per request (validation-service's POST /validate at `url`, process `pid`)
    and the plain Python reference, back to back and one every PACED_GAP_S, alternating over
    `rounds`; and the stack's (`pids`) wakeups per question while `lab_traffic()` runs
    `lab_seconds` of one attendee's lab traffic."""
    runs: dict[str, list[float]] = {k: [] for k in ("svc_hot", "svc_paced", "ref_hot", "ref_paced")}
    for _ in range(rounds):
        runs["svc_hot"].append(asyncio.run(_service_us(url, pid, 0.0, n)))
        runs["svc_paced"].append(asyncio.run(_service_us(url, pid, PACED_GAP_S, n)))
        runs["ref_hot"].append(reference_us(0.0, n))
        runs["ref_paced"].append(reference_us(PACED_GAP_S, n))
    out: dict[str, Any] = {k: round(min(v)) for k, v in runs.items()}
    out.update(gap_ms=PACED_GAP_S * 1000, requests=n * rounds)
    out["lab"] = lab_costs(pids, lab_traffic)
    out["wakeups_per_question"] = out["lab"]["wakeups_per_question"]
    out["wakeup_seconds"] = lab_seconds
    return out


def render(w: dict[str, Any]) -> list[str]:
    """The probe's table and what it says, for the budget section."""

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "–"

    gap = f"{w['gap_ms']:g} ms"
    return [
        f"**What bounds the CPU per question: cold wakeups.** The same request, back to back and "
        f"one every {gap} (about what a service sees of one attendee's lab traffic), "
        f"{w['requests']} of each; CPU from schedstat, the lowest of the rounds:",
        "",
        f"| CPU per call (µs) | back to back | one every {gap} | paced ÷ back to back |",
        "|---|---|---|---|",
        f"| validation-service, POST /validate (the whole process) | {w['svc_hot']} "
        f"| {w['svc_paced']} | {ratio(w['svc_paced'], w['svc_hot'])} |",
        f"| a plain Python loop in the bench's process (no kit code) | {w['ref_hot']} "
        f"| {w['ref_paced']} | {ratio(w['ref_paced'], w['ref_hot'])} |",
        "",
        "A request that arrives alone costs more than the same request on a warm core. A loop "
        "with no kit code slows down too, by less (it runs less code, so less has to be "
        "fetched again): much of the difference is the machine's (caches, TLB and branch "
        "predictors refilled after a sleep; on a VM, whatever else ran on the core), and it "
        "grows with the code a wakeup runs. At lab rates the CPU per question is therefore "
        "roughly the wakeups a question causes across the processes times the cost of a cold "
        "wakeup. Counted from voluntary context switches over "
        f"{w['wakeup_seconds']:g} s of one attendee's lab traffic, a question woke the "
        "stack's processes "
        f"**{w['wakeups_per_question']}** times (every HTTP hop wakes its server and then its "
        "caller, every Redis round trip its caller, a thread handoff both threads). What moves "
        "it: fewer wakeups per question (fewer hops and round trips on a question's path; "
        "storage-service now runs its SQLite statements on the event loop instead of handing "
        "each request to a threadpool thread, `STORAGE_DB_CALLS`), and less code per wakeup. "
        "The 25-user runs above keep the cores warm and cost less per question.",
    ]
