"""Order statistics over raw samples: the kit's one percentile.

DataPrime's ``percentile``/``median`` in the local executor, the labs' client and span p95s,
the test fake of Coralogix and the workshop's micro-benchmarks all compute it here, so a p95
means the same number wherever the kit prints one.

(``stack.common.red.quantile`` is a different thing: it estimates a quantile from a bucketed
histogram when the samples themselves are no longer kept.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (``q`` in [0, 1], e.g. 0.95 for p95) of ``values``; None if empty.

    Linear interpolation between the two closest ranks: the sorted values sit at positions
    0 .. n-1 and the answer is read at position ``q * (n - 1)``. That is numpy's default
    (``method="linear"``), ``statistics.quantiles(method="inclusive")``, and what the local
    DataPrime executor's ``percentile`` has always answered. Unlike nearest rank it does not
    jump from one sample to the next as ``q`` or ``n`` change, and p0/p100 are the min/max.

    A ``q`` outside [0, 1] (a p95 passed as 95, say) raises ValueError instead of answering
    a wrong number.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q must be in [0, 1] (0.95 for p95), got {q!r}")
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))
