"""Where a question's CPU goes at lab rates: the budget bench's decomposition (issue 19).

Three measurements of the same lab traffic, each in `workshop bench --budget`'s one run:
- the stack as built (full tracing), per process: CPU and wakeups per question;
- the same stack with the OpenTelemetry SDK off (`OTEL_SDK_DISABLED=true`);
- the bench's bare ASGI app (workshop/bench_chain.py's last hop: no routing, no middleware,
  no telemetry) on the services' own server
  (`stack.run.Server`: uvicorn, uvloop, httptools), answering one request at a time with the
  same pause between requests as a service sees at lab rates: what a wakeup costs this
  machine when the code it runs is next to nothing.

From them: telemetry's share is as built − off; the floor is what the off stack's wakeups
would cost if every Python wakeup were the bare app's (Redis and the collector as measured);
the rest is the kit's own code per wakeup (FastAPI, the services' work, the HTTP client).
A target below the floor cannot be met by making the code per wakeup cheaper; only by
fewer wakeups, that is fewer processes or round trips on a question's path.

`python -m workshop.bench_floor PORT` serves the bare app.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import Any

from stack.common.procs import stop
from stack.common.settings import REPO_ROOT
from stack.native.supervisor import http_ok, wait_for
from workshop.bench_wakeup import PACED_GAP_S, cpu_per_call

# Not Python: their wakeups are counted at their own measured cost, not the bare app's.
NATIVE = ("redis", "collector")


def serve(port: int) -> None:
    """The bench's bare ASGI app (workshop/bench_chain.py, a chain's last hop: no routing, no
    middleware, no telemetry) on the services' server class, loop and parser (stack/run.py)."""
    import uvicorn

    from stack.run import Server
    from workshop.bench_chain import app

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
    )
    Server(config).run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get_us(url: str, pid: int, gap_s: float, n: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            async with http.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"bare app at {url} answered {resp.status}")

        return await cpu_per_call(one, pid, gap_s, n)


def bare_costs(n: int = 300, rounds: int = 2) -> dict[str, Any]:
    """CPU per request (µs) of the bare app, back to back and one every PACED_GAP_S, the
    lowest of `rounds` alternating rounds (as the cold-wakeup probe reads the service)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workshop.bench_floor", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "CHAIN_NEXT": ""},  # the last hop: it answers, forwards nothing
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: http_ok(url), 20, "the bare app")
        hot, paced = [], []
        for _ in range(rounds):
            hot.append(asyncio.run(_get_us(url, proc.pid, 0.0, n)))
            paced.append(asyncio.run(_get_us(url, proc.pid, PACED_GAP_S, n)))
    finally:
        stop(proc, 10)
    return {"hot_us": round(min(hot)), "paced_us": round(min(paced)), "requests": n * rounds}


def floor_ms(per_process: dict[str, dict[str, float]], bare_paced_us: float) -> float:
    """A question's CPU if every Python wakeup in `per_process` (name → wakeups and ms per
    question) cost what a paced request costs the bare app; Redis and the collector at their
    own measured cost."""
    total = 0.0
    for name, v in per_process.items():
        total += v["ms"] if name in NATIVE else v["wakeups"] * bare_paced_us / 1000
    return round(total, 2)


def decompose(
    built: dict[str, Any], off: dict[str, Any], bare: dict[str, Any], rounds: int = 1
) -> dict[str, Any]:
    """`built` and `off`: bench_wakeup.lab_costs of the stack as built and with telemetry off
    (each the lowest of `rounds` turns); `bare`: bare_costs()."""
    floor = floor_ms(off["per_process"], bare["paced_us"])
    telemetry = round(built["ms_per_question"] - off["ms_per_question"], 2)
    code = round(off["ms_per_question"] - floor, 2)
    return {
        "built": built,
        "off": off,
        "bare": bare,
        "floor_ms": floor,
        "telemetry_ms": telemetry,
        "code_ms": code,
        "rounds": rounds,
    }


def render(x: dict[str, Any], target_ms: float) -> list[str]:
    """The decomposition's table and what it says, for the budget section."""
    built, off, bare = x["built"], x["off"], x["bare"]
    total = built["ms_per_question"]

    def share(ms: float) -> str:
        return f"{ms / total:.0%}" if total else "–"

    gap = f"{PACED_GAP_S * 1000:g} ms"
    verdict = (
        f"The floor alone ({x['floor_ms']} ms) is above the {target_ms:g} ms target: no "
        "amount of leaner code per wakeup meets it with this many wakeups."
        if x["floor_ms"] > target_ms
        else f"The floor ({x['floor_ms']} ms) is below the {target_ms:g} ms target, but the "
        f"target leaves {target_ms - x['floor_ms']:.2f} ms a question for all the code that "
        f"runs on those wakeups, telemetry included: today that code costs "
        f"{x['code_ms'] + x['telemetry_ms']:.2f} ms."
    )
    return [
        "**Where a question's CPU goes at lab rates.** The same lab traffic on the stack as "
        f"built ({built['questions']} questions) and on a third stack with the OpenTelemetry "
        f"SDK off (`OTEL_SDK_DISABLED=true`, {off['questions']} questions), taking turns with "
        f"the other idle beside it, the lowest of {x.get('rounds', 1)} turns each; and a bare ASGI "
        "app on the services' own server (uvicorn, uvloop, httptools; no routing, middleware "
        f"or telemetry), one request every {gap}: {bare['paced_us']} µs of CPU per request "
        f"({bare['hot_us']} µs back to back). That is what a wakeup costs this machine when "
        "it runs next to nothing (`workshop/bench_floor.py`):",
        "",
        "| part of a question's CPU | ms | share | how it is measured |",
        "|---|---|---|---|",
        f"| the wakeups themselves | {x['floor_ms']} | {share(x['floor_ms'])} | the "
        f"telemetry-off stack's {off['wakeups_per_question']} wakeups a question, each "
        "Python one at the bare app's cost; Redis and the collector as measured |",
        f"| telemetry (context propagation, spans, log records, export) | {x['telemetry_ms']} "
        f"| {share(x['telemetry_ms'])} | as built − telemetry off |",
        f"| the kit's code on those wakeups (FastAPI, the services' work, the HTTP client) "
        f"| {x['code_ms']} | {share(x['code_ms'])} | telemetry off − the floor |",
        f"| **as built** | **{total}** | | ({built['wakeups_per_question']} wakeups a question) |",
        "",
        verdict,
    ]


if __name__ == "__main__":
    serve(int(sys.argv[1]))
