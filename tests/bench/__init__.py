"""`workshop bench --short` and `--budget t3.small --short`: the benchmarks' whole code paths,
checked for shape, not values."""

from __future__ import annotations

import math
from typing import Any


def collector_built() -> bool:
    from stack.native.collector import collector_binary

    return collector_binary().exists()


def finite_number(value: Any) -> float:
    """`value` as a float, asserting it is a finite, non-negative number (not a bool)."""
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    assert math.isfinite(value) and value >= 0, value
    return float(value)
