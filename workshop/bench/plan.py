"""What a run measures and where: the plan (levels, durations, rounds), the stack's config and
ports, the targets the report checks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer

from stack.common.settings import ServiceName
from stack.native.config import NativeConfig

# The full flow's synchronous path is five HTTP exchanges through five processes:
# client→api-gateway, gateway→query-service, query-service→external-api-service,
# gateway→validation-service, gateway→queue-service. The chain: client→hop0→…→hop4.
CHAIN_HOPS = 5
PYTHON_SERVICES = [s.value for s in ServiceName]
# The profile's top finding, undone: polls through queue-service and storage-service.
BEFORE_FIX_ENV = {"GATEWAY_POLL_VIA": "services"}
FIX = (
    "polls read the job hash in Redis (one round trip) instead of asking queue-service, "
    "then storage-service (two HTTP hops)"
)
TARGETS = {
    "full_vs_chain": 0.4,
    "p95_ms": 250.0,
    "job_p95_ms": 1000.0,
    "telemetry_ratio": 0.85,
    "idle_stack_mib": 1024.0,
    "loaded_stack_mib": 1.3 * 1024,
    "service_idle_mib": 100.0,
    "startup_s": 15.0,
    # Issue 19 (a t3.small budget): a throughput floor, a tighter p95 and its own telemetry
    # bar (looser than the 0.85 above, which stays).
    "questions_per_s_19": 250.0,
    "p95_ms_19": 120.0,
    "telemetry_ratio_19": 0.75,
}


@dataclass
class Plan:
    short: bool
    levels: list[int]
    duration: float
    warmup: float
    overhead_duration: float  # per arm of the comparison, split into `rounds` slices
    chain_duration: float
    settle: float
    rounds: int

    @property
    def slice(self) -> float:
        return max(1.0, round(self.overhead_duration / self.rounds))

    @property
    def middle(self) -> int:
        return self.levels[len(self.levels) // 2]

    @property
    def top(self) -> int:
        return max(self.levels)


def make_plan(short: bool, users: str | None, duration: float | None) -> Plan:
    if duration is not None and not duration > 0:
        raise typer.BadParameter(f"--duration: seconds per level, more than 0, not {duration}")
    if users:
        try:
            levels = sorted({int(u) for u in users.split(",") if u.strip()})
        except ValueError:
            raise typer.BadParameter(
                f"--users takes numbers separated by commas, not {users!r}"
            ) from None
        if not levels:
            raise typer.BadParameter("--users needs at least one level ≥ 1")
        if levels[0] < 1:
            raise typer.BadParameter(f"--users: every level is ≥ 1, not {levels[0]}")
    else:
        levels = [2, 4] if short else [10, 25, 50]
    if short:
        d = duration or 5.0
        return Plan(True, levels, d, 3.0, 4.0, 3.0, 1.0, 2)
    d = duration or 60.0
    return Plan(False, levels, d, 10.0, d, d, 3.0, 4)


# The LLM stand-in answers 429 + Retry-After: 1 above LLM_RATE_LIMIT_RPS (200 by default), as a
# provider's quota would. Every question calls it once, so at that default a closed-loop bench
# measures the simulated quota, not the kit: the telemetry-off arm hit it at 25 users (p99
# 1050 ms, its POSTs waiting out 429s) and no arm could pass 200 questions/s. The bench's stacks
# lift it; the labs keep the default, where the quota is part of what a learner sees.
BENCH_ENV = {"LLM_RATE_LIMIT_RPS": "1000000"}


def bench_config(data_dir: Path, env: dict[str, str] | None = None) -> NativeConfig:
    """The stack's config: ports from a base of 23000 unless the environment moves them, and
    the LLM stand-in's quota lifted (BENCH_ENV)."""
    env = dict(os.environ if env is None else env)

    def port(name: str, default: int) -> int:
        raw = env.get(name, "")
        if raw and not raw.isdigit():
            raise typer.BadParameter(f"{name} must be a port number, got {raw!r}")
        return int(raw) if raw else default

    base = port("WORKSHOP_PORT_BASE", 23010)
    return NativeConfig(
        data_dir=data_dir.resolve(),
        port_base=base,
        redis_port=port("REDIS_PORT", 23379),
        otlp_grpc_port=port("OTLP_GRPC_PORT", 23317),
        otlp_http_port=port("OTLP_HTTP_PORT", 23318),
        collector_health_port=port("COLLECTOR_HEALTH_PORT", 23133),
        nginx_http_port=base + 70,
        nginx_https_port=base + 71,
        extra_env=dict(BENCH_ENV),
    )


def chain_ports(cfg: NativeConfig) -> list[int]:
    return [cfg.port_base + 20 + i for i in range(CHAIN_HOPS)]
