"""Validate a DataPrime query: syntax (via parser.py) plus semantic checks.

`validate` never raises: every problem becomes an `Issue` with a 1-based
line/column, and valid queries also get a canonical `normalized` form.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache

from . import nodes as n
from .errors import Issue, QueryError
from .functions import AGGREGATIONS, ALL_FUNCTIONS
from .parser import expr_pos, parse
from .printer import expr_text, query_text

SOURCES = ("logs", "spans")
_AGG_CONTEXT = "`groupby ... aggregate`, `aggregate` or `top ... by`"


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    normalized: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
            "normalized": self.normalized,
        }


class _Checker:
    """Collects semantic errors/warnings for one parsed query."""

    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, msg: str, pos: n.Pos) -> None:
        self.errors.append(Issue(msg, pos.line, pos.column, "error"))

    def warn(self, msg: str, pos: n.Pos) -> None:
        self.warnings.append(Issue(msg, pos.line, pos.column, "warning"))

    # ---- expressions
    def expr(self, e: n.Expr, allow_agg: bool, inside_agg: bool = False) -> bool:
        """Check e; returns True when e contains an aggregation call."""
        if isinstance(e, n.Lit | n.Path):
            return False
        if isinstance(e, n.Unary):
            return self.expr(e.operand, allow_agg, inside_agg)
        if isinstance(e, n.Binary):
            left = self.expr(e.left, allow_agg, inside_agg)
            return self.expr(e.right, allow_agg, inside_agg) or left
        return self.call(e, allow_agg, inside_agg)

    def call(self, c: n.Call, allow_agg: bool, inside_agg: bool) -> bool:
        if c.name not in ALL_FUNCTIONS:
            close = difflib.get_close_matches(c.name, list(ALL_FUNCTIONS), n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            self.error(f"unknown function `{c.name}`{hint}", c.pos)
            for a in c.args:
                self.expr(a, allow_agg, inside_agg)
            return False
        lo, hi = ALL_FUNCTIONS[c.name]
        got = len(c.args)
        if not lo <= got <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            plural = "" if want == "1" else "s"
            self.error(f"`{c.name}` takes {want} argument{plural}, got {got}", c.pos)
        is_agg = c.name in AGGREGATIONS
        if is_agg and inside_agg:
            self.error(f"aggregation `{c.name}()` cannot be nested in another aggregation", c.pos)
        elif is_agg and not allow_agg:
            self.error(f"aggregation `{c.name}()` is only allowed in {_AGG_CONTEXT}", c.pos)
        if c.name == "percentile":
            self.percentile(c)
        elif c.name == "roundTime" and got == 2 and not _is_duration(c.args[1]):
            self.error("`roundTime` needs a duration such as `1m` or `1h`", expr_pos(c.args[1]))
        elif c.name == "ago" and got == 1 and not _is_duration(c.args[0]):
            self.error("`ago` needs a duration such as `15m` or `1h`", expr_pos(c.args[0]))
        for a in c.args:
            self.expr(a, allow_agg, inside_agg or is_agg)
        return True if is_agg else any(_has_agg(a) for a in c.args)

    def percentile(self, c: n.Call) -> None:
        quantiles = [a for a in c.args[:2] if isinstance(a, n.Lit) and a.kind == "number"]
        if not quantiles:
            self.error(
                "`percentile` needs a literal percentile between 0 and 1, "
                "e.g. `percentile(0.95, $m.duration)`",
                c.pos,
            )
        elif not 0 <= float(quantiles[0].value) <= 1:
            self.error("the percentile must be between 0 and 1 (e.g. 0.95)", quantiles[0].pos)

    def positive_int(self, value: float, what: str, pos: n.Pos) -> None:
        if value <= 0 or value != int(value):
            self.error(f"`{what}` needs a positive number", pos)

    def aggs(self, items: tuple[n.Named, ...]) -> None:
        for item in items:
            if not self.expr(item.expr, allow_agg=True):
                self.error(
                    f"`{expr_text(item.expr)}` is not an aggregation: use e.g. `count()`, "
                    "`avg(...)` or `percentile(0.95, ...)`",
                    expr_pos(item.expr),
                )

    # ---- commands
    def query(self, q: n.Query) -> None:
        sources = [c for c in q.commands if isinstance(c, n.Source)]
        if not sources:
            self.warn("no `source`: the query runs over logs by default", n.Pos(1, 1))
        for i, src in enumerate(sources):
            if i > 0:
                self.error("only one `source` command is allowed", src.pos)
        if sources and q.commands[0] is not sources[0]:
            self.warn("`source` should be the first command", sources[0].pos)
        shaping = (n.GroupBy, n.Aggregate, n.Count, n.CountBy, n.Top, n.Distinct, n.Limit)
        if not any(isinstance(c, shaping) for c in q.commands):
            self.warn(
                "no `limit`: a raw search may return many rows; add e.g. `| limit 100`",
                q.commands[-1].pos,
            )
        for c in q.commands:
            self.command(c)

    def command(self, c: n.Command) -> None:
        match c:
            case n.Source():
                if c.name not in SOURCES:
                    close = difflib.get_close_matches(c.name, SOURCES, n=1, cutoff=0.5)
                    hint = f"; did you mean `{close[0]}`?" if close else ""
                    self.error(
                        f"unknown source `{c.name}`: expected `logs` or `spans`{hint}", c.name_pos
                    )
            case n.Filter() | n.Block() | n.CountBy():
                self.expr(c.expr, allow_agg=False)
            case n.GroupBy():
                for k in c.keys:
                    self.expr(k.expr, allow_agg=False)
                self.aggs(c.aggs)
            case n.Aggregate():
                self.aggs(c.aggs)
            case n.OrderBy():
                for e, _ in c.items:
                    self.expr(e, allow_agg=False)
            case n.Limit():
                self.positive_int(c.n, "limit", c.n_pos)
            case n.Choose():
                for item in c.items:
                    self.expr(item.expr, allow_agg=False)
            case n.Create():
                self.expr(c.expr, allow_agg=False)
            case n.Distinct() | n.DedupeBy():
                for e in c.exprs:
                    self.expr(e, allow_agg=False)
                if isinstance(c, n.DedupeBy):
                    self.positive_int(c.keep, "keep", c.keep_pos)
            case n.Top():
                self.positive_int(c.n, "bottom" if c.bottom else "top", c.n_pos)
                for item in c.items:
                    self.expr(item.expr, allow_agg=False)
                self.expr(c.by.expr, allow_agg=True)


def _is_duration(e: n.Expr) -> bool:
    return isinstance(e, n.Lit) and e.kind == "duration"


def _has_agg(e: n.Expr) -> bool:
    if isinstance(e, n.Call):
        return e.name in AGGREGATIONS or any(_has_agg(a) for a in e.args)
    if isinstance(e, n.Unary):
        return _has_agg(e.operand)
    if isinstance(e, n.Binary):
        return _has_agg(e.left) or _has_agg(e.right)
    return False


def check(q: n.Query) -> tuple[list[Issue], list[Issue]]:
    """Semantic errors and warnings of an already-parsed query."""
    checker = _Checker()
    checker.query(q)
    key = lambda i: (i.line, i.column)  # noqa: E731 - report in reading order
    return sorted(checker.errors, key=key), sorted(checker.warnings, key=key)


@lru_cache(maxsize=2048)
def _validate_cached(query: str) -> tuple[tuple[Issue, ...], tuple[Issue, ...], str | None]:
    try:
        tree = parse(query)
    except QueryError as exc:
        return (exc.to_issue(),), (), None
    errors, warnings = check(tree)
    return tuple(errors), tuple(warnings), None if errors else query_text(tree)


def validate(query: str) -> ValidationResult:
    """Validate a DataPrime query. Never raises for bad input."""
    if not isinstance(query, str):
        return ValidationResult(False, [Issue("the query must be a string", 1, 1)], [], None)
    try:
        errors, warnings, normalized = _validate_cached(query)
    except Exception as exc:  # defensive: validation must never take a service down
        issue = Issue(f"internal validator error: {type(exc).__name__}", 1, 1)
        return ValidationResult(False, [issue], [], None)
    return ValidationResult(not errors, list(errors), list(warnings), normalized)
