"""The function catalogue shared by the validator and the executor."""

from __future__ import annotations

# name -> (min args, max args); method form counts the receiver as the first argument.
SCALAR_FUNCTIONS: dict[str, tuple[int, int]] = {
    "contains": (2, 2),
    "startsWith": (2, 2),
    "endsWith": (2, 2),
    "matches": (2, 2),
    "toLowerCase": (1, 1),
    "toUpperCase": (1, 1),
    "length": (1, 1),
    "trim": (1, 1),
    "concat": (1, 16),
    "toString": (1, 1),
    "toNumber": (1, 1),
    "abs": (1, 1),
    "round": (1, 2),
    "floor": (1, 1),
    "ceil": (1, 1),
    "roundTime": (2, 2),
    "now": (0, 0),
    "ago": (1, 1),
    "ifNull": (2, 2),
}

AGGREGATIONS: dict[str, tuple[int, int]] = {
    "count": (0, 1),
    "count_if": (1, 2),
    "avg": (1, 1),
    "max": (1, 1),
    "min": (1, 1),
    "sum": (1, 1),
    "percentile": (2, 3),
    "distinct_count": (1, 1),
}

ALL_FUNCTIONS: dict[str, tuple[int, int]] = {**SCALAR_FUNCTIONS, **AGGREGATIONS}

# Valid DataPrime the validator accepts but the workshop executor does not implement;
# execute() raises QueryError naming the function.
UNSUPPORTED_FUNCTIONS: dict[str, tuple[int, int]] = {
    "ipInSubnet": (2, 2),
    "formatTimestamp": (1, 3),
    "parseInterval": (1, 1),
}
ALL_FUNCTIONS.update(UNSUPPORTED_FUNCTIONS)
