"""What fewer wakeups would buy: the budget bench's one-process experiment.

The cold-wakeup probe (workshop/bench_wakeup.py) says a question costs about as much CPU as
the wakeups it causes across the stack's processes. This experiment measures the other side:
the same eight services on the question's path, each on its own port and speaking HTTP to the
others as always, but all on one event loop in one process. A hop to a service in the same
process is then served while the loop is awake anyway, so it costs no wakeup of its own.

It is an experiment, not a layout the kit supports: a crash, cpu_burn or memory_leak fault
would hit all eight services at once, the Infrastructure Explorer would show one process, and
the OpenTelemetry SDK keeps one global provider per process, so every span carries the first
service's resource. It measures the CPU such a layout would save, not a way to run a workshop.

`python -m workshop.bench_one_process SERVICE...` runs the host; `measure` runs the experiment
on a native stack that is up, and puts the stack back as it found it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.common.procs import stop
from stack.common.settings import REPO_ROOT, ServiceName, get_settings
from workshop.bench_wakeup import lab_costs

if TYPE_CHECKING:
    from stack.native.config import NativeConfig

ON_PATH = [s for s in ServiceName if s is not ServiceName.FRONTEND]
HOST = "one process"


def host(names: Iterable[ServiceName]) -> None:
    """Serve every service in `names` on one uvloop loop until SIGTERM. uvicorn hands a
    captured signal on to the server that captured before it, so one SIGTERM stops them all."""
    import uvloop

    from stack.run import prepare_process, server_for

    settings = get_settings()
    prepare_process(settings)  # as each service's own process does, so the layouts compare
    servers = [server_for(name, settings, loop="none") for name in names]

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    uvloop.run(serve_all())


def measure(
    cfg: NativeConfig,
    pids: dict[str, int],
    lab_traffic: Callable[[], int],
    separate: dict[str, float],
    log_path: Path,
    step: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """The services in ON_PATH of the native stack `cfg` (processes `pids`)
    moved into one process, under `lab_traffic`, beside `separate`: bench_wakeup.lab_costs of
    the same traffic on the stack as built, just before. The services are back under
    supervisord when it returns."""
    from stack.native.supervisor import Supervisor, wait_all_ready

    names = [s.value for s in ON_PATH]
    others = {n: p for n, p in pids.items() if n not in names}
    sup = Supervisor(cfg)
    sup.ctl("stop", *names)
    step("one-process experiment: the same services in one process")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workshop.bench_one_process", *names],
            env={**os.environ, **cfg.service_env()},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ready = {n: cfg.url(ServiceName(n)) + "/ready" for n in names}
    try:
        wait_all_ready(ready, 60)
        lab_traffic()  # the new process's code paths warm, as the separate ones already were
        one = lab_costs({**others, HOST: proc.pid}, lab_traffic)
    finally:
        stop(proc, 30)
        sup.start(*names)
    wait_all_ready(ready, 60)
    return {"separate": separate, "one": one, "services": len(names)}


def render(x: dict[str, Any]) -> list[str]:
    """The experiment's table and what it says, for the budget section."""
    sep, one = x["separate"], x["one"]
    ratio = one["ms_per_question"] / sep["ms_per_question"] if sep["ms_per_question"] else 0.0
    return [
        f"**What fewer wakeups would buy, measured.** The {x['services']} services on a "
        "question's path, each in its own process as built, then all on one event loop in one "
        "process (`workshop/bench_one_process.py`: still eight apps on eight ports, still an "
        "HTTP hop and a span per call, the same trace), under the same lab traffic; Redis and "
        "the collector counted in both, idle not subtracted:",
        "",
        "| layout | wakeups per question | stack CPU per question (ms) |",
        "|---|---|---|",
        f"| one process per service (as built) | {sep['wakeups_per_question']} "
        f"| {sep['ms_per_question']} |",
        f"| the same services in one process (experiment) | {one['wakeups_per_question']} "
        f"| {one['ms_per_question']} |",
        "",
        f"One process costs {ratio:.2f}× the CPU per question: a hop to a service in the same "
        "process is served while its loop is awake anyway. It is not a layout the kit "
        "supports, and the figure is an upper bound on what it would save: a crash, cpu_burn "
        "or memory_leak fault would hit every service at once, the Infrastructure Explorer "
        "would show one process where learners look for eight, and one process uses one core "
        "(the 25-user runs above need both). Getting there with the learner's view intact "
        "means per-service telemetry providers in one process and process faults that stay "
        "with their service: a change to the kit's shape, not a tuning.",
    ]


if __name__ == "__main__":
    host(ServiceName(arg) for arg in sys.argv[1:])
