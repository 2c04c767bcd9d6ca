"""Column indexes over the synthetic data set, for a query's first filter.

Almost every query the assistant writes starts with `filter $m.timestamp > now() - 1h` or
`filter $l.serviceName == 'x'` over all 3,000 rows of a source; evaluated row by row that scan
was most of processing-service's CPU. The rows never change, so a sorted column answers a
range and a value map answers an equality, as a database index would: every query still runs,
only the first filter stops visiting rows it cannot match.

An index is built only where it gives exactly the row-by-row answer: ranges over columns
whose values are all numbers (None never matches a comparison), equality over columns whose
values are all strings, and `&&` of two such terms. Anything else returns None and the
executor scans as before.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import dataset

RANGE_OPS = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class Term:
    """`$key <op> constant`, or the conjunction of two terms (`op == "&&"`)."""

    op: str
    key: str = ""
    value: Any = None
    left: Term | None = None
    right: Term | None = None


def _is_number(v: object) -> bool:
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and not (isinstance(v, float) and math.isnan(v))
    )


@cache
def _sorted_column(source: str, key: str) -> tuple[list[Any], list[int]] | None:
    """(values ascending, their row positions) over rows holding a number; None when any
    row holds something a comparison would treat differently (a string, a bool)."""
    pairs: list[tuple[Any, int]] = []
    for pos, row in enumerate(dataset.rows_for(source)):
        v = row.get(key)
        if v is None:
            continue
        if not _is_number(v):
            return None
        pairs.append((v, pos))
    pairs.sort()
    return [v for v, _ in pairs], [p for _, p in pairs]


@cache
def _value_map(source: str, key: str) -> dict[str, list[int]] | None:
    """Row positions (ascending) by value, for columns of strings (None allowed)."""
    out: dict[str, list[int]] = {}
    for pos, row in enumerate(dataset.rows_for(source)):
        v = row.get(key)
        if v is None:
            continue
        if not isinstance(v, str):
            return None
        out.setdefault(v, []).append(pos)
    return out


def _positions(source: str, term: Term) -> set[int] | list[int] | None:
    if term.op == "&&":
        assert term.left is not None and term.right is not None
        left = _positions(source, term.left)
        right = _positions(source, term.right) if left is not None else None
        if left is None or right is None:
            return None
        return set(left).intersection(right)
    if term.op == "==" and isinstance(term.value, str):
        values = _value_map(source, term.key)
        return None if values is None else values.get(term.value, [])
    if term.op in RANGE_OPS and _is_number(term.value):
        column = _sorted_column(source, term.key)
        if column is None:
            return None
        ordered, positions = column
        c = term.value
        if term.op == ">":
            return positions[bisect.bisect_right(ordered, c) :]
        if term.op == ">=":
            return positions[bisect.bisect_left(ordered, c) :]
        if term.op == "<":
            return positions[: bisect.bisect_left(ordered, c)]
        return positions[: bisect.bisect_right(ordered, c)]
    return None


def rows_matching(source: str, term: Term) -> list[dict[str, Any]] | None:
    """The source's rows matching `term`, in the source's order; None if no index applies."""
    found = _positions(source, term)
    if found is None:
        return None
    rows = dataset.rows_for(source)
    return [rows[p] for p in sorted(found)]
