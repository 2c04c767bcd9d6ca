"""`workshop bench --short` and `--budget t3.small --short`: the benchmarks' whole code paths,
checked for shape, not values."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def collector_built() -> bool:
    from stack.native.collector import collector_binary

    return collector_binary().exists()


def stack_marks(bound_s: int) -> list[pytest.MarkDecorator]:
    """A bench test starts its own stacks: never in the in-process lane, bounded, and skipped
    where redis-server or the collector is missing (outside CI, which builds both)."""
    return [
        pytest.mark.stack,
        pytest.mark.timeout(bound_s + 30),
        pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
        pytest.mark.skipif(
            not collector_built() and os.environ.get("CI") != "true",
            reason="needs the collector (`make collector`)",
        ),
    ]


def run_bench(args: list[str], *, base: int, timeout_s: int) -> subprocess.CompletedProcess[str]:
    """`workshop bench ARGS` as a subprocess on ports from `base` (gateway base+10, Redis
    base+379, OTLP base+317/318, collector health base+133), never to a real account."""
    env = {
        **os.environ,
        "WORKSHOP_PORT_BASE": str(base + 10),
        "REDIS_PORT": str(base + 379),
        "OTLP_GRPC_PORT": str(base + 317),
        "OTLP_HTTP_PORT": str(base + 318),
        "COLLECTOR_HEALTH_PORT": str(base + 133),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "120",
    }
    env.pop("CX_PRIVATE_KEY", None)  # never ship test load to a real account
    exe = Path(sys.executable).with_name("workshop")
    proc = subprocess.run(
        [str(exe), "bench", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def finite_number(value: Any) -> float:
    """`value` as a float, asserting it is a finite, non-negative number (not a bool)."""
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    assert math.isfinite(value) and value >= 0, value
    return float(value)
