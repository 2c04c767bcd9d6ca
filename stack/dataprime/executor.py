"""Execute the supported DataPrime subset over the synthetic data set.

Queries are compiled once into plain Python closures (LRU-cached by query text),
so running a filter over 3000 rows is a list comprehension calling a small
closure tree, with constant sub-expressions such as ``now() - 1h`` folded. Leading filters
that a column index answers exactly (a time window, a service name) are one lookup instead of
a scan (stack/dataprime/index.py).

Over 600 lines on purpose: one compiler per command and per expression form, next to the
`NotExecuted` answers for the valid constructs it does not run, so "which DataPrime runs
locally" is readable in one place (docs/dataprime.md is generated beside it).
"""

from __future__ import annotations

import ipaddress
import math
import re
import statistics
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from typing import Any, cast

# DataPrime's percentile/median; re-exported: `from stack.dataprime.executor import percentile`.
from stack.common.stats import percentile as percentile

from . import dataset
from . import nodes as n
from .errors import QueryError
from .functions import AGGREGATIONS
from .index import RANGE_OPS, Term, rows_matching
from .parser import SEVERITIES, expr_pos, parse
from .printer import expr_text
from .validator import check

Row = dict[str, Any]
RowFn = Callable[[Row], Any]
Stage = Callable[[list[Row]], list[Row]]

# Compiled predicates an index can answer (stack/dataprime/index.py), by function, and the
# filter stages built on them.
_TERMS: weakref.WeakKeyDictionary[RowFn, Term] = weakref.WeakKeyDictionary()
_FILTER_TERMS: weakref.WeakKeyDictionary[Stage, Term] = weakref.WeakKeyDictionary()
# Compiled keypaths (`r.get(key)`), by function: a stage reads such a column over all its rows
# in one C-level pass (`_column`) instead of a Python call a row.
_PATHS: weakref.WeakKeyDictionary[RowFn, str] = weakref.WeakKeyDictionary()
# Compiled scalar calls (`roundTime($m.timestamp, 1h)`), by function: the function and its
# compiled arguments, so a column of calls is one `map` over the arguments' columns.
_CALLS: weakref.WeakKeyDictionary[RowFn, tuple[Callable[..., Any], list[Compiled]]] = (
    weakref.WeakKeyDictionary()
)

_DURATION_KEY = "$m.duration"  # microseconds, so duration literals are rescaled


class NotExecuted(QueryError):
    """Valid DataPrime that the local engine does not run: a distinct answer, not an error."""

    def __init__(self, construct: str, line: int, column: int) -> None:
        super().__init__(
            f"valid DataPrime; the local engine does not execute `{construct}`", line, column
        )
        self.construct = construct

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": "not_executed",
            "message": self.message,
            "construct": self.construct,
            "line": self.line,
            "column": self.column,
        }


@dataclass(frozen=True)
class ExecutionResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    rows_scanned: int
    rows_matched: int
    elapsed_ms: float
    source: str = "logs"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "rows",
            "columns": list(self.columns),
            "rows": [dict(r) for r in self.rows],
            "rows_scanned": self.rows_scanned,
            "rows_matched": self.rows_matched,
            "elapsed_ms": self.elapsed_ms,
            "source": self.source,
        }


# ------------------------------------------------------------------ helpers


def _truthy(v: Any) -> bool:
    return bool(v) if v is not None else False


def _column(f: RowFn, rows: list[Row]) -> list[Any]:
    """`f` of every row, in order."""
    key = _PATHS.get(f)
    if key is not None:
        return list(map(dict.get, rows, repeat(key)))
    call = _CALLS.get(f)
    if call is not None:
        fn, args = call
        columns = (
            repeat(a.value, len(rows)) if isinstance(a, _Const) else _column(a, rows) for a in args
        )
        return list(map(fn, *columns))
    return [f(r) for r in rows]


def _num(v: Any) -> Any:
    """Loose numeric coercion for string/number comparisons (`'500' == 500`)."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    if type(a) is not type(b) and (isinstance(a, str) or isinstance(b, str)):
        return _num(a), _num(b)
    return a, b


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    a, b = _align(a, b)
    equal: bool = a == b
    return equal


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        try:
            return op(a, b)
        except TypeError:
            a, b = _align(a, b)
            try:
                return op(a, b)
            except TypeError:
                return False

    return compare


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return op(a, b)
        except (TypeError, ZeroDivisionError, ValueError):
            return None

    return apply


def _div(a: Any, b: Any) -> Any:
    return a / b


def _text_match(a: Any, needle: Any) -> bool:
    if a is None or needle is None:
        return False
    return str(needle).lower() in str(a).lower()


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": _eq,
    "!=": lambda a, b: not _eq(a, b),
    "<": _cmp(lambda a, b: a < b),
    "<=": _cmp(lambda a, b: a <= b),
    ">": _cmp(lambda a, b: a > b),
    ">=": _cmp(lambda a, b: a >= b),
    "~": _text_match,
    "+": _arith(lambda a, b: a + b),
    "-": _arith(lambda a, b: a - b),
    "*": _arith(lambda a, b: a * b),
    "/": _arith(_div),
    "%": _arith(lambda a, b: a % b),
}


def _round_time(ts: Any, interval: Any) -> Any:
    if ts is None or not interval:
        return None
    return dataset.Timestamp(int(ts) - int(ts) % int(interval))


def _str_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(s: Any, *args: Any) -> Any:
        if s is None or any(a is None for a in args):
            return None
        return fn(str(s), *(str(a) for a in args))

    return call


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _to_number(v: Any) -> Any:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _nullsafe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        try:
            return fn(*args)
        except (TypeError, ValueError):
            return None

    return call


_SCALARS: dict[str, Callable[..., Any]] = {
    "contains": _str_fn(lambda s, sub: sub in s),
    "startsWith": _str_fn(lambda s, p: s.startswith(p)),
    "endsWith": _str_fn(lambda s, p: s.endswith(p)),
    "matches": _str_fn(lambda s, p: _regex(p).search(s) is not None),
    "toLowerCase": _str_fn(str.lower),
    "toUpperCase": _str_fn(str.upper),
    "trim": _str_fn(str.strip),
    "length": _nullsafe(lambda s: len(s) if isinstance(s, str | list) else len(str(s))),
    "concat": lambda *a: "".join("" if x is None else str(x) for x in a),
    "toString": lambda v: None if v is None else str(v),
    "toNumber": _to_number,
    "abs": _nullsafe(abs),
    "round": _nullsafe(lambda v, d=0: round(v, int(d))),
    "floor": _nullsafe(math.floor),
    "ceil": _nullsafe(math.ceil),
    "roundTime": _round_time,
    "now": lambda: dataset.Timestamp(dataset.ANCHOR_NS),
    "ago": lambda d: None if d is None else dataset.Timestamp(dataset.ANCHOR_NS - int(d)),
    "ifNull": lambda v, default: default if v is None else v,
    "if": lambda cond, then, other=None: then if _truthy(cond) else other,
    "firstNonNull": lambda *a: next((x for x in a if x is not None), None),
    "ltrim": _str_fn(str.lstrip),
    "rtrim": _str_fn(str.rstrip),
    "substr": _nullsafe(
        lambda s, start, ln=None: str(s)[int(start) :][: None if ln is None else int(ln)]
    ),
    "indexOf": _str_fn(lambda s, sub: s.find(sub)),
    "sqrt": _nullsafe(math.sqrt),
    "power": _nullsafe(lambda a, b: a**b),
    "arrayContains": lambda arr, x: arr is not None and any(_eq(v, x) for v in arr),
    "arrayLength": _nullsafe(len),
    "ipInSubnet": _nullsafe(
        lambda ip, net: ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)
    ),
}


def _unsupported(what: str, pos: n.Pos) -> QueryError:
    return NotExecuted(what, pos.line, pos.column)


_SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES, start=1)}
_SEVERITY_RANK.update({"WARN": 4, "FATAL": 6})


def _severity_rank(v: Any) -> Any:
    """Severity as its documented order (1 debug .. 6 critical), names case-insensitive."""
    if isinstance(v, str):
        return _SEVERITY_RANK.get(v.upper(), v)
    if isinstance(v, list):
        return [_severity_rank(x) for x in v]
    return v


# --------------------------------------------------------- row expressions


class _Const:
    """Marker wrapper: a compiled expression with a value known at compile time."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


Compiled = RowFn | _Const


def _as_fn(c: Compiled) -> RowFn:
    if isinstance(c, _Const):
        v = c.value
        return lambda r: v
    return c


def _compile(e: n.Expr) -> Compiled:
    """Compile a row-level expression; constants are folded into _Const."""
    if isinstance(e, n.Lit):
        return _Const(e.value)
    if isinstance(e, n.Path):
        key = e.key
        path: RowFn = lambda r: r.get(key)  # noqa: E731
        _PATHS[path] = key
        return path
    if isinstance(e, n.Unary):
        return _compile_unary(e)
    if isinstance(e, n.Binary):
        return _compile_binary(e)
    if isinstance(e, n.Call):
        return _compile_call(e)
    if isinstance(e, n.Cast):
        return _compile_cast(e)
    if isinstance(e, n.Array):
        items = [_compile(i) for i in e.items]
        if all(isinstance(i, _Const) for i in items):
            return _Const([i.value for i in items])  # type: ignore[union-attr]
        fns = [_as_fn(i) for i in items]
        return lambda r: [f(r) for f in fns]
    if isinstance(e, n.Template):
        pieces = [p if isinstance(p, str) else _as_fn(_compile(p)) for p in e.parts]
        return lambda r: "".join(
            p if isinstance(p, str) else ("" if (v := p(r)) is None else str(v)) for p in pieces
        )
    if isinstance(e, n.TimestampOf) and isinstance(e.expr, n.Lit) and e.expr.kind == "string":
        from .parser import parse_timestamp

        ns = dataset.ANCHOR_NS if e.expr.value == "now" else parse_timestamp(str(e.expr.value))
        return _Const(dataset.Timestamp(ns or 0))
    if isinstance(e, n.Case):
        return _compile_case(e)
    raise _unsupported(expr_text(e)[:40], expr_pos(e))


def _compile_cast(e: n.Cast) -> Compiled:
    inner = _as_fn(_compile(e.expr))
    typ = {"num": "number", "boolean": "bool"}.get(e.type, e.type)
    if typ == "number":
        return lambda r: _to_number(inner(r))
    if typ == "string":
        return lambda r: None if (v := inner(r)) is None else str(v)
    if typ == "bool":
        return lambda r: None if (v := inner(r)) is None else str(v).lower() == "true"
    raise _unsupported(f":{e.type}", e.pos)


def _compile_case(e: n.Case) -> Compiled:
    default = _as_fn(_compile(e.default)) if e.default is not None else (lambda r: None)
    subject = _as_fn(_compile(e.subject)) if e.subject is not None else None
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "case_contains": lambda s, v: s is not None and v is not None and str(v) in str(s),
        "case_equals": lambda s, v: _eq(s, v),
        "case_greaterthan": lambda s, v: _BINARY[">"](s, v),
        "case_greatherthan": lambda s, v: _BINARY[">"](s, v),
        "case_lessthan": lambda s, v: _BINARY["<"](s, v),
    }
    clauses = [(_as_fn(_compile(c)), _as_fn(_compile(v))) for c, v in e.clauses]
    if subject is None:

        def run(r: Row) -> Any:
            for cond, value in clauses:
                if _truthy(cond(r)):
                    return value(r)
            return default(r)

        return run
    test = tests[e.kind]

    def run_subject(r: Row) -> Any:
        s = subject(r)
        for cond, value in clauses:
            if test(s, cond(r)):
                return value(r)
        return default(r)

    return run_subject


def _compile_unary(e: n.Unary) -> Compiled:
    if e.op == "~":  # free text over every string field of the row
        needle_c = _compile(e.operand)
        if isinstance(needle_c, _Const):
            needle = str(needle_c.value).lower()
            text = dataset.search_text
            return lambda r: needle in text(r)
        nf = needle_c
        return lambda r: (v := nf(r)) is not None and str(v).lower() in dataset.search_text(r)
    inner = _compile(e.operand)
    if e.op == "!":
        fn: Callable[[Any], Any] = lambda v: not _truthy(v)  # noqa: E731
    else:
        fn = _nullsafe(lambda v: -v)
    if isinstance(inner, _Const):
        return _Const(fn(inner.value))
    f = inner
    return lambda r: fn(f(r))


def _is_severity_path(e: n.Expr) -> bool:
    return isinstance(e, n.Path) and e.key == "$m.severity"


def _rank(c: Compiled) -> Compiled:
    if isinstance(c, _Const):
        return _Const(_severity_rank(c.value))
    f = c
    return lambda r: _severity_rank(f(r))


def _is_duration_path(e: n.Expr) -> bool:
    return isinstance(e, n.Path) and e.key == _DURATION_KEY


def _compile_binary(e: n.Binary) -> Compiled:
    left, right = _compile(e.left), _compile(e.right)
    # `$m.duration > 500ms`: durations are stored in µs, literals are in ns.
    if _is_duration_path(e.left) and isinstance(e.right, n.Lit) and e.right.kind == "duration":
        right = _Const(cast(int, e.right.value) // 1000)  # durations are int ns
    if _is_duration_path(e.right) and isinstance(e.left, n.Lit) and e.left.kind == "duration":
        left = _Const(cast(int, e.left.value) // 1000)
    if _is_severity_path(e.left) or _is_severity_path(e.right):
        left, right = _rank(left), _rank(right)
    if e.op == "in":
        lf, rf = _as_fn(left), _as_fn(right)
        return lambda r: (v := rf(r)) is not None and any(_eq(lf(r), x) for x in v)
    if e.op == "~~":
        if not (isinstance(e.left, n.Path) and not e.left.parts):
            raise _unsupported("~~ on a keypath", e.pos)
        needle_c = _as_fn(right)
        text = dataset.search_text
        return lambda r: (v := needle_c(r)) is not None and str(v).lower() in text(r)
    if isinstance(e.right, n.Lit) and e.right.kind == "regex" and e.op == "~":
        pattern = _regex(str(e.right.value))
        lf = _as_fn(left)
        return lambda r: (v := lf(r)) is not None and pattern.search(str(v)) is not None
    if e.op == "&&":
        lf, rf = _as_fn(left), _as_fn(right)
        both: RowFn = lambda r: _truthy(lf(r)) and _truthy(rf(r))  # noqa: E731
        if lf in _TERMS and rf in _TERMS:
            _TERMS[both] = Term("&&", left=_TERMS[lf], right=_TERMS[rf])
        return both
    if e.op == "||":
        lf, rf = _as_fn(left), _as_fn(right)
        return lambda r: _truthy(lf(r)) or _truthy(rf(r))
    op = _BINARY[e.op]
    if isinstance(left, _Const) and isinstance(right, _Const):
        return _Const(op(left.value, right.value))
    if isinstance(right, _Const) and isinstance(e.left, n.Path) and not _is_severity_path(e.left):
        # hot path: `$path <op> constant`
        key, c = e.left.key, right.value
        if e.op == "~" and c is not None:
            needle = str(c).lower()
            return lambda r: (v := r.get(key)) is not None and needle in str(v).lower()
        if e.op == "==" and c is not None and not isinstance(c, str):
            return lambda r: (v := r.get(key)) == c or (isinstance(v, str) and _eq(v, c))
        compare: RowFn = lambda r: op(r.get(key), c)  # noqa: E731
        if e.op == "==" or e.op in RANGE_OPS:
            _TERMS[compare] = Term(e.op, key, c)
        return compare
    lf, rf = _as_fn(left), _as_fn(right)
    return lambda r: op(lf(r), rf(r))


def _compile_call(e: n.Call) -> Compiled:
    if e.name in AGGREGATIONS:
        raise QueryError(
            f"aggregation `{e.name}()` is only allowed in `groupby ... aggregate`, "
            "`aggregate` or `top ... by`",
            e.pos.line,
            e.pos.column,
        )
    fn = _SCALARS.get(e.name)
    if fn is None:
        raise _unsupported(f"{e.name}()", e.pos)
    args = [_compile(a) for a in e.args]
    if e.name == "matches" and isinstance(args[1], _Const):
        pattern = args[1].value
        try:
            _regex(str(pattern))
        except re.error as exc:
            pos = expr_pos(e.args[1])
            raise QueryError(f"invalid regular expression: {exc}", pos.line, pos.column) from None
    if all(isinstance(a, _Const) for a in args):
        return _Const(fn(*(a.value for a in args)))  # type: ignore[union-attr]
    fns = [_as_fn(a) for a in args]
    call: RowFn
    if len(fns) == 1:
        (a0,) = fns
        call = lambda r: fn(a0(r))  # noqa: E731
    elif len(fns) == 2:
        a0, a1 = fns
        call = lambda r: fn(a0(r), a1(r))  # noqa: E731
    else:
        call = lambda r: fn(*(f(r) for f in fns))  # noqa: E731
    _CALLS[call] = (fn, args)
    return call


def compile_expr(e: n.Expr) -> RowFn:
    return _as_fn(_compile(e))


# ------------------------------------------------------ group expressions

GroupFn = Callable[[list[Row]], Any]


def _values(f: RowFn, rows: list[Row]) -> list[Any]:
    return [v for v in _column(f, rows) if v is not None]


def _numeric(f: RowFn, rows: list[Row]) -> list[float]:
    out = []
    for v in _column(f, rows):
        if isinstance(v, bool) or v is None:
            continue
        if not isinstance(v, int | float):
            v = _to_number(v)
            if v is None:
                continue
        out.append(v)
    return out


def _agg_call(e: n.Call) -> GroupFn:
    args = e.args
    name = e.name
    if name == "count":
        if not args:
            return len
        f = compile_expr(args[0])
        return lambda rows: len(rows) - _column(f, rows).count(None)
    if name == "count_if":
        cond = compile_expr(args[0])
        return lambda rows: sum(1 for r in rows if _truthy(cond(r)))
    if name == "distinct_count":
        f = compile_expr(args[0])
        return lambda rows: len(set(_values(f, rows)))
    if name == "percentile":
        q_arg, x_arg = args[0], args[1]
        if not (isinstance(q_arg, n.Lit) and q_arg.kind == "number"):
            q_arg, x_arg = x_arg, q_arg  # accept percentile($m.duration, 0.95) too
        q = float(q_arg.value)  # type: ignore[union-attr, arg-type]
        f = compile_expr(x_arg)
        return lambda rows: percentile(_numeric(f, rows), q)
    f = compile_expr(args[0])
    if name == "median":
        return lambda rows: percentile(_numeric(f, rows), 0.5)
    if name == "stddev":
        return lambda rows: statistics.pstdev(v) if (v := _numeric(f, rows)) else None
    if name == "variance":
        return lambda rows: statistics.pvariance(v) if (v := _numeric(f, rows)) else None
    if name == "any_value":
        return lambda rows: next((v for r in rows if (v := f(r)) is not None), None)
    if name == "collect":
        return lambda rows: _values(f, rows)
    if name == "avg":
        return lambda rows: (sum(v) / len(v)) if (v := _numeric(f, rows)) else None
    if name == "sum":
        return lambda rows: sum(_numeric(f, rows))
    if name == "min":
        return lambda rows: min(v, default=None) if (v := _values(f, rows)) else None
    if name == "max":
        return lambda rows: max(v, default=None) if (v := _values(f, rows)) else None
    raise _unsupported(f"{name}()", e.pos)


def compile_group_expr(e: n.Expr) -> GroupFn:
    """Expression evaluated once per group (aggregations combined arithmetically)."""
    if isinstance(e, n.Call) and e.name in AGGREGATIONS:
        return _agg_call(e)
    if isinstance(e, n.Lit):
        v = e.value
        return lambda rows: v
    if isinstance(e, n.Path):  # a grouping key: take it from the group's first row
        key = e.key
        return lambda rows: rows[0].get(key) if rows else None
    if isinstance(e, n.Binary):
        lf, rf = compile_group_expr(e.left), compile_group_expr(e.right)
        if e.op == "&&":
            return lambda rows: _truthy(lf(rows)) and _truthy(rf(rows))
        if e.op == "||":
            return lambda rows: _truthy(lf(rows)) or _truthy(rf(rows))
        op = _BINARY[e.op]
        return lambda rows: op(lf(rows), rf(rows))
    if isinstance(e, n.Unary):
        inner = compile_group_expr(e.operand)
        if e.op == "!":
            return lambda rows: not _truthy(inner(rows))
        if e.op == "-":
            return lambda rows: None if (v := inner(rows)) is None else -v
        raise _unsupported("free-text `~` inside an aggregation", e.pos)
    if not isinstance(e, n.Call):
        raise _unsupported(expr_text(e)[:40], expr_pos(e))
    fn = _SCALARS.get(e.name)
    if fn is None:
        raise _unsupported(f"{e.name}()", e.pos)
    arg_fns = [compile_group_expr(a) for a in e.args]
    return lambda rows: fn(*(f(rows) for f in arg_fns))


# ---------------------------------------------------------------- stages


def _name(item: n.Named) -> str:
    """Storage key of an output column: alias, the keypath itself, or the printed expr."""
    if item.alias is not None:
        return item.alias.key
    if isinstance(item.expr, n.Path):
        return item.expr.key
    return "$d." + expr_text(item.expr)


def _expr_name(e: n.Expr) -> str:
    return _name(n.Named(e, None))


def _group_rows(keys: list[RowFn], rows: list[Row]) -> dict[tuple[Any, ...], list[Row]]:
    """Rows by their key tuple, groups in order of first appearance."""
    if not keys:
        return {(): rows} if rows else {}
    groups: defaultdict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for key, r in zip(zip(*(_column(k, rows) for k in keys), strict=True), rows, strict=True):
        groups[key].append(r)
    return groups


def _groupby_stage(keys: tuple[n.Named, ...], aggs: tuple[n.Named, ...]) -> Stage:
    key_names = [_name(k) for k in keys]
    key_fns = [compile_expr(k.expr) for k in keys]
    agg_names = [_name(a) for a in aggs]
    agg_fns = [compile_group_expr(a.expr) for a in aggs]

    def run(rows: list[Row]) -> list[Row]:
        out = []
        for key, members in _group_rows(key_fns, rows).items():
            rec = dict(zip(key_names, key, strict=True))
            for name, fn in zip(agg_names, agg_fns, strict=True):
                rec[name] = fn(members)
            out.append(rec)
        return out

    return run


def _aggregate_stage(aggs: tuple[n.Named, ...]) -> Stage:
    names = [_name(a) for a in aggs]
    fns = [compile_group_expr(a.expr) for a in aggs]
    return lambda rows: [{name: fn(rows) for name, fn in zip(names, fns, strict=True)}]


def _sort_key(v: Any) -> tuple[int, int, Any]:
    # None last; numbers before strings so mixed columns never raise TypeError
    if v is None:
        return (1, 0, 0)
    if isinstance(v, int | float):
        return (0, 0, v)
    return (0, 1, str(v))


def _orderby_stage(items: tuple[tuple[n.Expr, bool], ...]) -> Stage:
    compiled = [(compile_expr(e), desc) for e, desc in items]

    def run(rows: list[Row]) -> list[Row]:
        out = list(rows)
        for f, desc in reversed(compiled):  # stable multi-key sort: last key first
            # Nulls last either way, in their order; the rest by _sort_key, stable. A column
            # of only numbers or only strings sorts by its values, which _sort_key orders
            # alike, without a tuple a row.
            values = _column(f, out)
            present = [i for i, v in enumerate(values) if v is not None]
            nulls = [out[i] for i, v in enumerate(values) if v is None]
            keys = [values[i] for i in present]
            if not (
                all(isinstance(v, int | float) for v in keys)
                or all(isinstance(v, str) for v in keys)
            ):
                keys = [_sort_key(v) for v in keys]
            order = sorted(range(len(keys)), key=keys.__getitem__, reverse=desc)
            out = [out[present[j]] for j in order] + nulls
        return out

    return run


def _choose_stage(items: tuple[n.Named, ...]) -> Stage:
    names = [_name(i) for i in items]
    fns = [compile_expr(i.expr) for i in items]
    pairs = list(zip(names, fns, strict=True))
    return lambda rows: [{name: f(r) for name, f in pairs} for r in rows]


def _create_stage(target: n.Path, expr: n.Expr) -> Stage:
    key, f = target.key, compile_expr(expr)

    def run(rows: list[Row]) -> list[Row]:
        out = []
        for r in rows:
            new = dict(r)
            new[key] = f(r)
            out.append(new)
        return out

    return run


def _remove_stage(targets: tuple[n.Path, ...]) -> Stage:
    keys = tuple(t.key for t in targets)
    prefixes = tuple(k + "." for k in keys)
    return lambda rows: [
        {k: v for k, v in r.items() if k not in keys and not k.startswith(prefixes)} for r in rows
    ]


def _top_stage(c: n.Top) -> Stage:
    by_name = _name(c.by)
    if (
        isinstance(c.by.expr, n.Call)
        and c.by.expr.name in AGGREGATIONS
        or _is_group_expr(c.by.expr)
    ):
        group = _groupby_stage(c.items, (c.by,))
    else:  # `top 5 $d.x by $m.duration`: no grouping, rank raw rows
        group = _choose_stage((*c.items, c.by))
    limit = int(c.n)
    reverse = not c.bottom

    def run(rows: list[Row]) -> list[Row]:
        out = group(rows)
        ranked = [r for r in out if r.get(by_name) is not None]
        ranked.sort(key=lambda r: _sort_key(r[by_name]), reverse=reverse)
        return ranked[:limit]

    return run


def _is_group_expr(e: n.Expr) -> bool:
    if isinstance(e, n.Call):
        return e.name in AGGREGATIONS or any(_is_group_expr(a) for a in e.args)
    if isinstance(e, n.Binary):
        return _is_group_expr(e.left) or _is_group_expr(e.right)
    if isinstance(e, n.Unary):
        return _is_group_expr(e.operand)
    return False


def _dedupe_stage(exprs: tuple[n.Expr, ...], keep: int) -> Stage:
    fns = [compile_expr(e) for e in exprs]

    def run(rows: list[Row]) -> list[Row]:
        seen: dict[tuple[Any, ...], int] = {}
        out = []
        if not fns:
            return rows[:keep]
        for k, r in zip(zip(*(_column(f, rows) for f in fns), strict=True), rows, strict=True):
            if seen.get(k, 0) < keep:
                seen[k] = seen.get(k, 0) + 1
                out.append(r)
        return out

    return run


def _stage(c: n.Command) -> Stage | None:
    match c:
        case n.Source():
            return None
        case n.Filter():
            pred = compile_expr(c.expr)
            keep: Stage = lambda rows: [r for r in rows if pred(r)]  # noqa: E731
            if (term := _TERMS.get(pred)) is not None:
                _FILTER_TERMS[keep] = term
            return keep
        case n.Block():
            pred = compile_expr(c.expr)
            return lambda rows: [r for r in rows if not pred(r)]
        case n.GroupBy():
            return _groupby_stage(c.keys, c.aggs)
        case n.Aggregate():
            return _aggregate_stage(c.aggs)
        case n.Count():
            name = c.alias.key if c.alias else "$d._count"
            return lambda rows: [{name: len(rows)}]
        case n.CountBy():
            alias = n.Named(n.Call("count", (), False, c.pos), c.alias)
            named = alias if c.alias else n.Named(alias.expr, _count_alias(c.pos))
            return _groupby_stage((n.Named(c.expr, None),), (named,))
        case n.OrderBy():
            return _orderby_stage(c.items)
        case n.Limit():
            limit = int(c.n)
            return lambda rows: rows[:limit]
        case n.Choose():
            return _choose_stage(c.items)
        case n.Create():
            return _create_stage(c.target, c.expr)
        case n.Remove():
            return _remove_stage(c.targets)
        case n.Distinct():
            return _groupby_stage(tuple(n.Named(e, None) for e in c.exprs), ())
        case n.Top():
            return _top_stage(c)
        case n.DedupeBy():
            return _dedupe_stage(c.exprs, int(c.keep))
        case n.Generic():
            return _generic_stage(c)
    raise _unsupported(type(c).__name__.lower(), c.pos)  # pragma: no cover


def _text_arg(raw: str) -> str:
    from .parser import _unquote

    return _unquote(raw)


def _generic_stage(c: n.Generic) -> Stage:
    """The documented commands the local engine runs beyond the core ones."""
    p = c.parts
    if c.name == "find" and len(p) == 4:  # find 'text' in keypath (case-insensitive)
        needle, key = _text_arg(str(p[1])).lower(), cast(n.Path, p[3]).key
        return lambda rows: [
            r for r in rows if (v := r.get(key)) is not None and needle in str(v).lower()
        ]
    if c.name == "wildfind":  # the text anywhere in the record
        needle = _text_arg(str(p[1])).lower()
        return lambda rows: [r for r in rows if needle in dataset.search_text(r)]
    if c.name == "replace" and len(p) == 4:  # replace keypath with expr
        key, f = cast(n.Path, p[1]).key, compile_expr(cast(n.Expr, p[3]))
        return lambda rows: (
            [{**r, key: f(r)} for r in rows if key in r] + [r for r in rows if key not in r]
        )
    if c.name == "move" and len(p) == 4:  # move keypath to keypath (children included)
        src, dst = cast(n.Path, p[1]).key, cast(n.Path, p[3]).key
        return lambda rows: [_moved(r, src, dst) for r in rows]
    if c.name == "convert":
        casts = [x for x in p if isinstance(x, n.Cast) and isinstance(x.expr, n.Path)]
        if len(casts) == sum(1 for x in p if isinstance(x, n.Cast)):
            pairs = [(cast(n.Path, x.expr).key, compile_expr(x)) for x in casts]
            return lambda rows: [{**r, **{k: f(r) for k, f in pairs if k in r}} for r in rows]
    if c.name == "roundtime":  # roundtime [ts] to interval [into keypath]
        rest = list(p[1:])
        ts = rest.pop(0) if rest[0] != "to" else n.Path("m", ("timestamp",), False, c.pos)
        interval = rest[1]
        into = rest[3] if len(rest) == 4 else None
        if isinstance(ts, n.Path) and isinstance(interval, n.Lit) and interval.kind == "duration":
            step, key = int(cast(int, interval.value)), ts.key
            out = into.key if isinstance(into, n.Path) else key
            return lambda rows: [{**r, out: _round_time(r.get(key), step)} for r in rows]
    raise _unsupported(c.name, c.pos)


def _moved(row: Row, src: str, dst: str) -> Row:
    out: Row = {}
    for k, v in row.items():
        if k == src:
            out[dst] = v
        elif k.startswith(src + ".") or k.startswith(src + "["):
            out[dst + k[len(src) :]] = v
        else:
            out[k] = v
    return out


def _count_alias(pos: n.Pos) -> n.Path:
    return n.Path("d", ("_count",), True, pos)


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class Plan:
    source: str
    stages: tuple[Stage, ...]
    # The leading filters as one index lookup, when an index answers them exactly
    # (stack/dataprime/index.py), and how many stages that lookup replaces.
    first: Term | None = None
    indexed_stages: int = 0


@lru_cache(maxsize=1024)
def _compile_plan(query: str) -> Plan | QueryError:
    try:
        tree = parse(query)
        errors, _ = check(tree)
        if errors:
            first = errors[0]
            return QueryError(first.message, first.line, first.column)
        sources = [c for c in tree.commands if isinstance(c, n.Source)]
        pre: list[Stage] = []
        if sources:
            src = sources[0]
            if src.name not in ("logs", "spans"):
                raise NotExecuted(f"source {src.name}", src.name_pos.line, src.name_pos.column)
            if src.params:  # the synthetic data set is one team's
                param = src.params[0]
                raise NotExecuted(f"source ... {param.name}", param.pos.line, param.pos.column)
            if src.range_kind == "last" and isinstance(src.range_args[0], n.Lit):
                since = dataset.ANCHOR_NS - int(cast(int, src.range_args[0].value))
                pre.append(lambda rows: [r for r in rows if r["$m.timestamp"] >= since])
            elif src.range_kind is not None:
                raise NotExecuted(f"source ... {src.range_kind}", src.pos.line, src.pos.column)
        compiled = [(c, _stage(c)) for c in tree.commands]
        stages = tuple(s for _, s in compiled if s is not None)
        # Leading filters an index answers become one lookup (their conjunction).
        lookup: Term | None = None
        skipped = 0
        if not pre and compiled and isinstance(compiled[0][0], n.Source):
            for _, stage in compiled[1:]:
                if stage is None or (term := _FILTER_TERMS.get(stage)) is None:
                    break
                lookup = term if lookup is None else Term("&&", left=lookup, right=term)
                skipped += 1
        name = sources[0].name if sources else "logs"
        return Plan(name, (*pre, *stages), lookup, skipped)
    except QueryError as exc:
        return exc


def compile_query(query: str) -> Plan:
    """Parse, check and compile (cached). Raises QueryError."""
    if not isinstance(query, str):
        raise QueryError("the query must be a string", 1, 1)
    plan = _compile_plan(query)
    if isinstance(plan, NotExecuted):
        raise NotExecuted(plan.construct, plan.line, plan.column)
    if isinstance(plan, QueryError):
        raise QueryError(plan.message, plan.line, plan.column)
    return plan


def _display_name(key: str) -> str:
    return key[3:] if key.startswith("$d.") else key


def _json_value(v: Any) -> Any:
    if isinstance(v, dataset.Timestamp):
        return v.iso()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def execute(query: str, *, preview: int = 20) -> ExecutionResult:
    """Run a query over the synthetic data set; raises QueryError for bad/unsupported input."""
    started = time.perf_counter()
    plan = compile_query(query)
    source_rows = dataset.rows_for(plan.source)
    stages = plan.stages
    indexed = rows_matching(plan.source, plan.first) if plan.first is not None else None
    if indexed is not None:
        rows, stages = indexed, stages[plan.indexed_stages :]
    else:
        rows = list(source_rows)
    for stage in stages:
        rows = stage(rows)
    keep = rows[: max(0, int(preview))]
    columns: dict[str, None] = {}
    for r in keep:
        columns.update(dict.fromkeys(r))
    out_rows = [{_display_name(k): _json_value(v) for k, v in r.items()} for r in keep]
    elapsed = (time.perf_counter() - started) * 1000
    return ExecutionResult(
        columns=[_display_name(c) for c in columns],
        rows=out_rows,
        rows_scanned=len(source_rows),
        rows_matched=len(rows),
        elapsed_ms=round(elapsed, 3),
        source=plan.source,
    )
