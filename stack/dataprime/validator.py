"""Validate a DataPrime query: syntax (via parser.py) plus semantic checks.

`validate` never raises: every problem becomes an `Issue` with a 1-based
line/column, and valid queries also get a canonical `normalized` form.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from . import nodes as n
from .errors import Issue, QueryError
from .functions import AGGREGATIONS, FUNCTIONS
from .parser import JOIN_KINDS, expr_pos, parse
from .printer import expr_text, query_text

SOURCES = ("logs", "spans")
# A dataset's parameters, `source logs(teamId='58942')`: name -> (what it does, where it is
# documented). docs/dataprime.md is generated from this.
SOURCE_PARAMS = {
    "teamId": (
        "reads the dataset of another team the user belongs to (a string or a number)",
        "https://coralogix.com/docs/dataprime/language-reference/commands-reference/union/",
    ),
}
EXTRACTORS = ("regexp", "kv", "jsonobject", "split")
_TYPE_ALIASES = {"num": "number", "boolean": "bool"}
_LIT_TYPES = {
    "string": "string",
    "number": "number",
    "duration": "interval",
    "bool": "bool",
    "regex": "regexp",
}
_ACCEPTS = {"regexp": {"regexp", "string"}, "any": None}


def static_type(e: object) -> str | None:
    """The type of an expression when it is known without data (literals, casts, calls)."""
    if isinstance(e, n.Lit):
        return _LIT_TYPES.get(e.kind)
    if isinstance(e, n.Cast):
        return _TYPE_ALIASES.get(e.type, e.type)
    if isinstance(e, n.Template):
        return "string"
    if isinstance(e, n.TimestampOf):
        return "timestamp"
    if isinstance(e, n.Array):
        return "array"
    if isinstance(e, n.Binary) and e.op in ("==", "!=", "<", "<=", ">", ">=", "~", "~~", "in"):
        return "bool"
    if isinstance(e, n.Call) and e.name in FUNCTIONS:
        ret = FUNCTIONS[e.name].returns
        return None if ret == "any" else ret
    return None


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
        t = type(e)
        if t is n.Lit or t is n.Path:
            return False
        if t is n.Call:
            return self.call(e, allow_agg, inside_agg)  # type: ignore[arg-type]
        if isinstance(e, n.Unary):
            return self.expr(e.operand, allow_agg, inside_agg)
        if isinstance(e, n.Binary):
            left = self.expr(e.left, allow_agg, inside_agg)
            if e.op in ("~", "~~") and static_type(e.right) not in (None, "string", "regexp"):
                self.error(f"`{e.op}` needs text or a /regex/ on its right", expr_pos(e.right))
            return self.expr(e.right, allow_agg, inside_agg) or left
        if isinstance(e, n.Cast):
            typ = _TYPE_ALIASES.get(e.type, e.type)
            if typ not in ("string", "number", "bool", "timestamp", "interval", "regexp"):
                self.error(
                    f"unknown type `{e.type}`: use string, number, bool, timestamp or interval",
                    e.pos,
                )
            return self.expr(e.expr, allow_agg, inside_agg)
        if isinstance(e, n.Index):
            return self.expr(e.expr, allow_agg, inside_agg) | self.expr(e.index, False)
        if isinstance(e, n.Array):
            return any([self.expr(i, allow_agg, inside_agg) for i in e.items])
        if isinstance(e, n.Template):
            exprs = [p for p in e.parts if not isinstance(p, str)]
            return any([self.expr(p, allow_agg, inside_agg) for p in exprs])
        if isinstance(e, n.TimestampOf):
            return self.expr(e.expr, allow_agg, inside_agg)
        if isinstance(e, n.Case):
            items = [e.subject] if e.subject is not None else []
            items += [x for pair in e.clauses for x in pair]
            items += [e.default] if e.default is not None else []
            return any([self.expr(i, allow_agg, inside_agg) for i in items])
        # Every other node type returned above: e is a Call.
        return self.call(cast(n.Call, e), allow_agg, inside_agg)

    def call(self, c: n.Call, allow_agg: bool, inside_agg: bool) -> bool:
        fn = FUNCTIONS.get(c.name)
        if fn is None:
            close = difflib.get_close_matches(c.name, list(FUNCTIONS), n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            self.error(f"unknown function `{c.name}`{hint}", c.pos)
            for a in c.args:
                self.expr(a, allow_agg, inside_agg)
            return False
        if c.method and not fn.method:
            self.error(f"`{c.name}` has no method form: write `{c.name}(...)`", c.pos)
        known = {p.name for p in fn.params} if c.names else set()
        for name in c.names:
            if name is not None and name not in known:
                self.error(f"`{c.name}` has no parameter `{name}` (`{fn.signature()}`)", c.pos)
        lo, hi = fn.min_args, fn.max_args
        got = len(c.args)
        if not lo <= got <= hi:
            want = str(lo) if lo == hi else (f"at least {lo}" if hi == 64 else f"{lo} to {hi}")
            plural = "" if want == "1" else "s"
            self.error(
                f"`{c.name}` takes {want} argument{plural}, got {got} (`{fn.signature()}`)",
                c.pos,
            )
        elif c.name != "percentile":
            for i, a in enumerate(c.args):
                param = fn.param_for(i)
                have = static_type(a)
                if param is None or have is None or param.type == "any":
                    continue
                accepted = _ACCEPTS.get(param.type, {param.type})
                if accepted is not None and have not in accepted and param.type == "interval":
                    self.error(
                        f"`{c.name}` needs a duration such as `1m` or `1h` for "
                        f"`{param.name}`, got {have}",
                        expr_pos(a),
                    )
                elif accepted is not None and have not in accepted:
                    self.error(
                        f"`{c.name}` expects {param.type} for `{param.name}`, got {have}",
                        expr_pos(a),
                    )
        is_agg = fn.aggregation
        if is_agg and inside_agg:
            self.error(f"aggregation `{c.name}()` cannot be nested in another aggregation", c.pos)
        elif is_agg and not allow_agg:
            self.error(f"aggregation `{c.name}()` is only allowed in {_AGG_CONTEXT}", c.pos)
        if c.name == "percentile":
            self.percentile(c)
        for a in c.args:
            self.expr(a, allow_agg, inside_agg or is_agg)
        return True if is_agg else any(_has_agg(a) for a in c.args)

    def percentile(self, c: n.Call) -> None:
        quantiles = [a for a in c.args[:2] if isinstance(a, n.Lit) and a.kind == "number"]
        if len(c.args) < 2:
            return
        if not quantiles:
            self.error(
                "`percentile` needs a literal percentile between 0 and 1, "
                "e.g. `percentile(0.95, $m.duration)`",
                c.pos,
            )
        elif not 0 <= float(cast(float, quantiles[0].value)) <= 1:
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
                    close = difflib.get_close_matches(c.name, SOURCES, n=1, cutoff=0.6)
                    if close:
                        self.error(
                            f"unknown source `{c.name}`; did you mean `{close[0]}`?", c.name_pos
                        )
                    else:
                        self.warn(
                            f"`{c.name}` is a custom or system dataset: the local engine only "
                            "has `logs` and `spans`",
                            c.name_pos,
                        )
                self.source_params(c)
                for a in c.range_args:
                    if a is not None:
                        self.expr(a, allow_agg=False)
                if c.range_kind in ("last", "timeshifted") and static_type(c.range_args[0]) not in (
                    None,
                    "interval",
                ):
                    self.error(
                        f"`{c.range_kind}` needs an interval such as `1h`",
                        expr_pos(c.range_args[0]),
                    )
            case n.Generic():
                self.generic(c)
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
                if isinstance(c, n.DedupeBy) and c.keep_text is not None:
                    self.positive_int(c.keep, "keep", c.keep_pos)
            case n.Top():
                self.positive_int(c.n, "bottom" if c.bottom else "top", c.n_pos)
                for item in c.items:  # the grouping variation may aggregate here too
                    self.expr(item.expr, allow_agg=True)
                self.expr(c.by.expr, allow_agg=True)

    def source_params(self, c: n.Source) -> None:
        seen: set[str] = set()
        for p in c.params:
            if p.name not in SOURCE_PARAMS:
                close = difflib.get_close_matches(p.name, list(SOURCE_PARAMS), n=1, cutoff=0.6)
                known = ", ".join(f"`{k}`" for k in SOURCE_PARAMS)
                hint = f"; did you mean `{close[0]}`?" if close else f" (documented: {known})"
                self.error(f"unknown dataset parameter `{p.name}`{hint}", p.pos)
            elif p.name in seen:
                self.error(f"`{p.name}` is given twice", p.pos)
            seen.add(p.name)

    def generic(self, c: n.Generic) -> None:
        parts = list(c.parts)
        for i, part in enumerate(parts):
            prev = parts[i - 1] if i else None
            if isinstance(part, n.Query):
                for sub in part.commands:
                    self.command(sub)
            elif isinstance(part, tuple):
                is_agg_list = c.name == "multigroupby" and prev in (
                    "aggregate",
                    "agg",
                    "calculate",
                    "calc",
                )
                if is_agg_list:
                    self.aggs(part)
                else:
                    for item in part:
                        self.expr(item.expr, allow_agg=False)
            elif c.name == "extract" and prev == "using" and isinstance(part, n.Call):
                if part.name not in EXTRACTORS:
                    close = difflib.get_close_matches(part.name, EXTRACTORS, n=1, cutoff=0.6)
                    hint = f"; did you mean `{close[0]}`?" if close else ""
                    self.error(
                        f"unknown extractor `{part.name}`: use regexp, kv, jsonobject or split"
                        + hint,
                        part.pos,
                    )
            elif c.name == "join" and prev == "join" and isinstance(part, str) and part != "(":
                if part not in JOIN_KINDS:
                    self.error(f"unknown join kind `{part}`: use left, inner, full or cross", c.pos)
            elif isinstance(part, n.Cast | n.Path):
                if isinstance(part, n.Cast):
                    self.expr(part, allow_agg=False)
            elif not isinstance(part, str):
                self.expr(part, allow_agg=False)  # type: ignore[arg-type]


def _is_duration(e: n.Expr) -> bool:
    return isinstance(e, n.Lit) and e.kind == "duration"


def _has_agg(e: n.Expr) -> bool:
    if isinstance(e, n.Call):
        return e.name in AGGREGATIONS or any(_has_agg(a) for a in e.args)
    if isinstance(e, n.Cast):
        return _has_agg(e.expr)
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


@lru_cache(maxsize=4096)
def _validate_cached(query: str) -> tuple[tuple[Issue, ...], tuple[Issue, ...], str | None]:
    try:
        tree = parse(query)
    except QueryError as exc:
        return (exc.to_issue(),), (), None
    errors, warnings = check(tree)
    return tuple(errors), tuple(warnings), None if errors else query_text(tree)


def validate(query: str) -> ValidationResult:
    """Validate a DataPrime query. Never raises for bad input."""
    if isinstance(query, bytes | bytearray):
        try:
            bytes(query).decode("utf-8")
        except UnicodeDecodeError as exc:
            issue = Issue(f"the query is not valid UTF-8 (byte {exc.start})", 1, exc.start + 1)
            return ValidationResult(False, [issue], [], None)
    if not isinstance(query, str):
        return ValidationResult(False, [Issue("the query must be a string", 1, 1)], [], None)
    try:
        errors, warnings, normalized = _validate_cached(query)
    except Exception as exc:  # defensive: validation must never take a service down
        issue = Issue(f"internal validator error: {type(exc).__name__}", 1, 1)
        return ValidationResult(False, [issue], [], None)
    return ValidationResult(not errors, list(errors), list(warnings), normalized)
