"""`stack.common.stats.percentile`, the kit's one percentile, against an independent oracle:
the standard library's inclusive quantiles (linear interpolation, numpy's default)."""

from __future__ import annotations

import random
import statistics

import pytest

from stack.common.stats import percentile


def _oracle(values: list[float], q: float) -> float:
    """statistics' inclusive method: cut point k of n=100 is the (k/100)-quantile."""
    if q == 0:
        return min(values)
    if q == 1:
        return max(values)
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [2, 3, 7, 20, 101, 1000])
@pytest.mark.parametrize("q", [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_matches_the_inclusive_quantiles_of_statistics(seed: int, size: int, q: float) -> None:
    rng = random.Random(seed * 1000 + size)
    values = [rng.lognormvariate(3, 1) for _ in range(size)]
    assert percentile(values, q) == pytest.approx(_oracle(values, q))


def test_order_and_integer_inputs_do_not_matter() -> None:
    values = [50, 10, 40, 20, 30]
    assert percentile(values, 0.95) == pytest.approx(
        statistics.quantiles(values, n=20, method="inclusive")[18]
    )
    assert percentile(values, 0.5) == statistics.median(values)
    assert values == [50, 10, 40, 20, 30]  # the caller's list is not sorted in place
    assert percentile((1, 2, 3, 4), 0.5) == statistics.median((1, 2, 3, 4))


def test_empty_is_none() -> None:
    assert percentile([], 0.95) is None


@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 1.0])
def test_a_single_value_is_every_percentile(q: float) -> None:
    assert percentile([42.5], q) == 42.5


@pytest.mark.parametrize("q", [95, 50, 1.01, -0.1])
def test_q_outside_0_1_is_refused(q: float) -> None:
    """A p95 passed on the 0..100 scale fails loudly instead of answering a wrong number."""
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        percentile([1.0, 2.0, 3.0], q)
