"""Parse DataPrime text into the typed AST in ``nodes.py``.

The lark LALR parser is built once at import with the transformer embedded, so
parsing builds our AST directly (no intermediate lark tree). Lark exceptions are
translated into ``QueryError`` with user-facing messages; lark's terminal names
never reach the user.

Input limits (``MAX_QUERY_CHARS``, ``MAX_NESTING``) are checked before lark runs: LALR is
linear, but lark's parser keeps one Python frame-free stack entry per open bracket and the
transformer recurses when printing, so a 10,000-deep `((((...` is refused up front.

Over 600 lines on purpose: the transformer has one small method per grammar rule (about 40
commands and expression forms), and the error translation needs the same rule names; split
across modules, a rule and its callback would drift apart.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path as FsPath
from typing import Any, NoReturn, TypeVar, cast

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import nodes as n
from .errors import QueryError

try:
    # lark's compiled LALR parser and lexer (github.com/lark-parser/lark_cython): the same
    # grammar, tables and callbacks, about a third less time per query (issue 15's speed
    # point). Its tokens are not lark Tokens, hence _TOKENS. Where no wheel exists for the
    # platform, the pure-Python parser does the same work.
    import lark_cython

    _PLUGINS: dict[str, Any] = dict(lark_cython.plugins)
    _TOKEN_TYPES: tuple[type, ...] = (Token, lark_cython.Token)
except ImportError:  # pragma: no cover - every lock pins a wheel for x86_64 and aarch64
    _PLUGINS, _TOKEN_TYPES = {}, (Token,)
# isinstance(x, _TOKENS) narrows to Token for the type checker; both kinds have its attributes.
_TOKENS = cast("type[Token]", _TOKEN_TYPES)

MAX_QUERY_CHARS = 20_000
MAX_NESTING = 64

# ----------------------------------------------------------------- constants

# canonical command name -> aliases (documented in commands-reference/*)
COMMAND_ALIASES: dict[str, tuple[str, ...]] = {
    "source": ("from",),
    "filter": ("f", "where"),
    "block": (),
    "choose": ("select",),
    "create": ("add", "c", "a"),
    "groupby": (),
    "multigroupby": (),
    "aggregate": (),
    "count": (),
    "countby": (),
    "top": (),
    "bottom": (),
    "distinct": (),
    "dedupeby": (),
    "orderby": ("sortby", "order by", "sort by"),
    "limit": (),
    "extract": ("e",),
    "explode": (),
    "find": ("text",),
    "wildfind": ("wildtext",),
    "lucene": (),
    "replace": (),
    "redact": (),
    "remove": ("r",),
    "move": ("m",),
    "convert": ("conv",),
    "roundtime": (),
    "enrich": (),
    "join": (),
    "union": (),
    "stitch": (),
}
COMMAND_NAMES: tuple[str, ...] = tuple(
    name
    for canon, aliases in COMMAND_ALIASES.items()
    for name in (canon, *aliases)
    if " " not in name
)
_CANONICAL = {alias: canon for canon, aliases in COMMAND_ALIASES.items() for alias in aliases}
_CLAUSE_KEYWORDS = (
    "AS", "BY", "FROM", "INTO", "ASC", "DESC", "KEEP", "AGGREGATE", "AGG", "CALCULATE", "CALC",
    "USING", "WITH", "TO", "IN", "ON", "DATATYPES", "ORIGINAL", "MATCHING", "AND_KW",
    "INTERVAL_KW", "LAST", "BETWEEN", "TIMESHIFTED", "AROUND",
)  # fmt: skip
_OPERATORS = frozenset(
    {"OR", "AND", "EQ", "NE", "LT", "LE", "GT", "GE", "TILDE", "TILDE2", "PLUS", "MINUS"}
    | {"STAR", "SLASH", "PERCENT", "DOT", "IN", "LSQB", "COLON"}
)
_NUMBER_COMMANDS = {"limit", "top", "bottom", "keep"}
SEVERITIES = ("DEBUG", "VERBOSE", "INFO", "WARNING", "ERROR", "CRITICAL")

_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+)(ns|us|ms|s|m|h|d|w)")
SCOPES = {"d": "d", "data": "d", "l": "l", "labels": "l", "m": "m", "metadata": "m", "p": "p"}
_ESCAPES = re.compile(r"\\(.)")
_ESCAPE_MAP = {"n": "\n", "t": "\t", "r": "\r"}
_CREATE_OPTIONS = {
    ("keypath", "exists"): ("fail", "skip", "overwrite"),
    ("keypath", "missing"): ("fail", "skip", "create"),
    ("datatype", "change"): ("fail", "skip", "overwrite"),
    ("datatype", "changed"): ("fail", "skip", "overwrite"),  # spelling in the glossary
}
JOIN_KINDS = ("left", "inner", "full", "cross")
CAST_TYPES = ("string", "number", "num", "bool", "boolean", "timestamp", "interval", "regexp")


def duration_ns(text: str) -> int:
    """`1h30m` -> nanoseconds."""
    return sum(int(v) * _DURATION_UNITS_NS[u] for v, u in _DURATION_PART.findall(text))


def parse_timestamp(text: str) -> int | None:
    """ISO-8601 text -> ns since the epoch (None when it is not a timestamp)."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _pos(tok: Token) -> n.Pos:
    return n.Pos(tok.line or 1, tok.column or 1)


def _scope(tok: Token) -> str:
    return _scope_of(tok.value, tok.line or 1, tok.column or 1)


def _scope_of(head: str, line: int, column: int) -> str:
    scope = SCOPES.get(head[1:])
    if scope is not None:
        return scope
    close = difflib.get_close_matches(head[1:], list(SCOPES), n=1, cutoff=0.5)
    hint = f"; did you mean `${close[0]}`?" if close else ""
    raise QueryError(
        f"unknown keypath prefix `{head}`: use `$d` (data), `$l` (labels) or `$m` (metadata){hint}",
        line,
        column,
    )


def _path_from_text(text: str, pos: n.Pos) -> n.Path:
    """Dotted text (no brackets) -> Path; used by code that builds paths from strings."""
    if text.startswith("$"):
        head, *parts = text[1:].split(".")
        return n.Path(SCOPES[head], tuple(parts), False, pos)
    return n.Path("d", tuple(text.split(".")), True, pos)


def expr_pos(e: object) -> n.Pos:
    if isinstance(e, n.Binary):
        return expr_pos(e.left)
    if isinstance(e, n.Named):
        return expr_pos(e.expr)
    return getattr(e, "pos", n.Pos(1, 1))


def _unquote(raw: str) -> str:
    return _ESCAPES.sub(lambda m: _ESCAPE_MAP.get(m.group(1), m.group(1)), raw[1:-1])


def _no_tokens(items: tuple[Any, ...]) -> list[Any]:
    return [i for i in items if not isinstance(i, _TOKENS) and i is not None]


class _Parts(tuple[object, ...]):
    """Printed pieces of a sub-clause of a generic command (flattened into its parts)."""


class _NamedArg:
    __slots__ = ("expr", "name")

    def __init__(self, name: str, expr: n.Expr) -> None:
        self.name = name
        self.expr = expr


_COMPARISONS = {"==", "!=", "<", "<=", ">", ">=", "in"}


def _severity_enum(e: object) -> object:
    """A bare `ERROR` next to `$m.severity` is the documented enum, not the path `$d.ERROR`."""
    if isinstance(e, n.Path) and e.bare and len(e.parts) == 1 and e.parts[0].upper() in SEVERITIES:
        return n.Lit(e.parts[0].upper(), "enum", e.parts[0], e.pos)
    if isinstance(e, n.Array):
        return n.Array(tuple(_severity_enum(i) for i in e.items), e.pos)  # type: ignore[misc]
    return e


def _is_severity(e: object) -> bool:
    return type(e) is n.Path and e.scope == "m" and e.parts == ("severity",)


def _part(item: object) -> tuple[object, ...]:
    """Flatten one child of a generic command into printable parts."""
    if item is None:
        return ()
    if isinstance(item, _Parts):
        return tuple(item)
    if isinstance(item, _TOKENS):
        if item.type == "COMMA":
            return (",",)
        if item.type in ("LPAR", "RPAR"):
            return (item.value,)
        if item.type in ("STRING", "REGEX", "NUMBER", "IDENT", "DURATION"):
            return (item.value,)
        return (_CANONICAL.get(item.value, item.value),)
    return (item,)


class _SourceParams(tuple):  # type: ignore[type-arg]
    """A source's `(name=value, ...)`, told apart from its time range by type."""


def _generic(name: str) -> Callable[..., n.Generic]:
    def build(self: _ToAst, *items: Any) -> n.Generic:
        kw = next(i for i in items if isinstance(i, _TOKENS))
        parts: list[object] = [name]
        rest = list(items)
        rest.remove(kw)
        if kw.type in ("ORDER", "SORT"):  # `order by` / `sort by`: drop the BY too
            rest.pop(0)
        for item in rest:
            parts.extend(_part(item))
        return n.Generic(name, tuple(parts), _pos(kw))

    return build


_F = TypeVar("_F", bound=Callable[..., object])


def _list_callback(fn: _F) -> _F:
    """Marks a hot callback written against lark's own convention (one list of children)."""
    fn.__dict__["takes_list"] = True
    return fn


class _ToAst:
    """Builds nodes.* objects while LALR reduces (embedded in the parser).

    Methods take a rule's children as positional arguments; `_callbacks()` adapts them to
    lark's one-list calling convention with a single lambda each (cheaper than lark's
    `v_args` wrapper, which costs two extra Python calls on every reduction).
    """

    # ---- commands
    def unknown_command(self, tok: Token) -> NoReturn:
        raise _unknown_command(tok.value, tok.line or 1, tok.column or 1)

    @_list_callback
    def query(self, items: list[Any]) -> n.Query:
        return n.Query(tuple([i for i in items if not isinstance(i, _TOKENS)]))

    def source(self, kw: Token, name: Token, *rest: Any) -> n.Source:
        params: tuple[n.SourceParam, ...] = ()
        kind, args = None, ()
        for r in rest:  # no placeholders: the params, the range, both or neither
            if isinstance(r, _SourceParams):
                params = tuple(r)
            else:
                kind, args = r
        return n.Source(name.value, _pos(kw), _pos(name), kind, args, params)

    def dataset_params(self, *items: Any) -> _SourceParams:
        return _SourceParams(i for i in items if isinstance(i, n.SourceParam))

    def dataset_param(self, name: Token, _assign: Token, value: Token) -> n.SourceParam:
        lit = self.string([value]) if value.type == "STRING" else self.number([value])
        return n.SourceParam(name.value, lit, _pos(name))

    def source_range(self, kw: Token, *rest: Any) -> tuple[str, tuple[Any, ...]]:
        return kw.value, tuple(r for r in rest if not isinstance(r, _TOKENS))

    @_list_callback
    def filter(self, c: list[Any]) -> n.Filter:
        return n.Filter(c[1], n.Pos(c[0].line, c[0].column))

    def block(self, kw: Token, expr: n.Expr) -> n.Block:
        return n.Block(expr, _pos(kw))

    def agg_kw(self, tok: Token) -> Token:
        return tok

    def groupby(self, kw: Token, keys: tuple[n.Named, ...], *rest: Any) -> n.GroupBy:
        aggs = next((r for r in rest if isinstance(r, tuple)), ())
        return n.GroupBy(keys, aggs, _pos(kw))

    def aggregate(self, kw: Token, aggs: tuple[n.Named, ...]) -> n.Aggregate:
        return n.Aggregate(aggs, _pos(kw))

    def count(self, kw: Token, *rest: Any) -> n.Count:
        return n.Count(rest[-1] if rest else None, _pos(kw))

    def countby(self, kw: Token, expr: n.Expr, *rest: Any) -> n.CountBy:
        clauses = dict(zip(rest[::2], rest[1::2], strict=True))
        by_type = {k.type: v for k, v in clauses.items()}
        return n.CountBy(expr, by_type.get("INTO"), _pos(kw), by_type.get("AS"))

    def orderby(self, kw: Token, *items: Any) -> n.OrderBy:
        return n.OrderBy(tuple(_no_tokens(items)), _pos(kw))

    def order_item(self, expr: n.Expr, direction: Token | None = None) -> tuple[n.Expr, bool]:
        return (expr, direction is not None and direction.type == "DESC")

    def limit(self, kw: Token, num: Token) -> n.Limit:
        return n.Limit(float(num.value), num.value, _pos(kw), _pos(num))

    def choose(self, kw: Token, items: tuple[n.Named, ...]) -> n.Choose:
        return n.Choose(items, _pos(kw))

    def create(
        self, kw: Token, target: n.Path, _from: Token, expr: n.Expr, *options: _Parts
    ) -> n.Create | n.Generic:
        if options:
            parts: list[object] = ["create", target, "from", expr]
            for o in options:
                parts.extend(o)
            return n.Generic("create", tuple(parts), _pos(kw))
        return n.Create(target, expr, _pos(kw))

    def create_option(self, on: Token, a: Token, b: Token, c: Token) -> _Parts:
        allowed = _CREATE_OPTIONS.get((a.value, b.value))
        if allowed is None:
            raise QueryError(
                "expected `on keypath exists`, `on keypath missing` or `on datatype change`",
                a.line or 1,
                a.column or 1,
            )
        if c.value not in allowed:
            raise QueryError(
                f"`on {a.value} {b.value}` takes one of: {', '.join(allowed)}",
                c.line or 1,
                c.column or 1,
            )
        return _Parts(("on", a.value, b.value, c.value))

    def remove(self, kw: Token, *targets: Any) -> n.Remove:
        return n.Remove(tuple(_no_tokens(targets)), _pos(kw))

    def distinct(self, kw: Token, items: tuple[n.Named, ...]) -> n.Distinct | n.Generic:
        if any(i.alias is not None for i in items):
            return n.Generic("distinct", ("distinct", items), _pos(kw))
        return n.Distinct(tuple(i.expr for i in items), _pos(kw))

    def top(
        self, kw: Token, num: Token, items: tuple[n.Named, ...], _by: Token, by: n.Named
    ) -> n.Top:
        return n.Top(
            float(num.value), num.value, items, by, kw.type == "BOTTOM", _pos(kw), _pos(num)
        )

    def dedupeby(self, kw: Token, *rest: Any) -> n.DedupeBy:
        has_keep = len(rest) >= 2 and isinstance(rest[-2], _TOKENS) and rest[-2].type == "KEEP"
        num = rest[-1] if has_keep else None
        exprs = tuple(_no_tokens(rest[:-2] if has_keep else rest))
        if num is None:
            return n.DedupeBy(exprs, 1.0, None, _pos(kw), _pos(kw))
        return n.DedupeBy(exprs, float(num.value), num.value, _pos(kw), _pos(num))

    multigroupby = _generic("multigroupby")
    extract = _generic("extract")
    explode = _generic("explode")
    find = _generic("find")
    wildfind = _generic("wildfind")
    lucene = _generic("lucene")
    replace = _generic("replace")
    redact = _generic("redact")
    move = _generic("move")
    convert = _generic("convert")
    roundtime = _generic("roundtime")
    enrich = _generic("enrich")
    join = _generic("join")
    _union = _generic("union")

    def union(self, kw: Token, *rest: Any) -> n.Generic:
        first = rest[0]
        if isinstance(first, _TOKENS) and first.type == "DATASET":
            # `union logs(teamId=98361)` (IBM Cloud Logs' reference) is `union (source logs(...))`
            params = tuple(rest[1]) if len(rest) > 1 else ()
            src = n.Source(first.value, _pos(first), _pos(first), params=params)
            return n.Generic("union", ("union", "(", n.Query((src,)), ")"), _pos(kw))
        return self._union(kw, *rest)

    stitch = _generic("stitch")

    def group_set(self, _l: Token, items: object, _r: Token) -> _Parts:
        return _Parts(("(", items, ")"))

    def join_condition(self, kw: Token, *rest: object) -> _Parts:
        parts: list[object] = [kw.value]
        for r in rest:
            parts.extend(_part(r))
        return _Parts(parts)

    def extractor(self, name: Token, _l: Token, *rest: Any) -> n.Call:
        return self.call(name, _l, *rest)

    def typed(self, target: n.Path, _colon: Token, type_: Token) -> n.Cast:
        return n.Cast(target, type_.value, _pos(type_))

    @_list_callback
    def named_list(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items[::2])  # named, COMMA, named, ...

    @_list_callback
    def named(self, c: list[Any]) -> n.Named:
        return n.Named(c[0], c[2] if len(c) == 3 else None)

    def target(self, *items: Any) -> n.Path:
        side, root, accessors = _side_split(items)
        if root.type == "VARIABLE" and not accessors and side is None:
            return n.Path(_scope(root), (), False, _pos(root), None)
        base = self._path_token(side, root)
        if not accessors:
            return base
        return n.Path(base.scope, (*base.parts, *accessors), base.bare, base.pos, base.side)

    def _path_token(self, side: Token | None, tok: Token) -> n.Path:
        sd = side.value[:-2] if side is not None else None
        parts = tok.value.split(".")
        pos = n.Pos(tok.line or 1, tok.column or 1)
        if parts[0][0] == "$":
            scope = _scope_of(parts[0], pos.line, pos.column)
            return n.Path(scope, tuple(parts[1:]), False, pos, sd)
        return n.Path("d", tuple(parts), True, pos, sd)

    @_list_callback
    def path(self, items: list[Any]) -> n.Path:
        if len(items) == 1:
            return self._path_token(None, items[0])
        return self._path_token(items[0], items[1])

    def path_call(self, tok: Token, _lpar: Token, *rest: Any) -> n.Call:
        args = rest[0] if len(rest) == 2 else None
        recv_text, _, name = tok.value.rpartition(".")
        column = (tok.column or 1) + len(recv_text) + 1
        recv = self._path_token(None, Token("PATH", recv_text, line=tok.line, column=tok.column))
        args, names = _split_args(args)
        names = (None, *names) if names else ()
        return n.Call(name, (recv, *args), True, n.Pos(tok.line or 1, column), names)

    def accessor(self, *items: Token) -> str:
        tok = items[1] if len(items) > 1 else items[0]
        if tok.type == "STRING":
            return _unquote(tok.value)
        text: str = tok.value
        return text

    # ---- expressions
    @_list_callback
    def binop(self, c: list[Any]) -> n.Binary:
        left, op, right = c
        if op.value in _COMPARISONS and (type(left) is n.Path or type(right) is n.Path):
            if _is_severity(left):
                right = _severity_enum(right)
            elif _is_severity(right):
                left = _severity_enum(left)
        return n.Binary(op.value, left, right, n.Pos(op.line, op.column))

    def unop(self, op: Token, operand: n.Expr) -> n.Unary:
        return n.Unary(op.value, operand, _pos(op))

    def var(self, *items: Any) -> n.Path:
        side, tok = (None, items[0]) if len(items) == 1 else items
        sd = side.value[:-2] if side is not None else None
        return n.Path(_scope(tok), (), False, _pos(tok), sd)

    def ident(self, *items: Any) -> n.Path:
        side, tok = (None, items[0]) if len(items) == 1 else items
        sd = side.value[:-2] if side is not None else None
        return n.Path("d", (tok.value,), True, _pos(tok), sd)

    def field(self, recv: n.Expr, _dot: Token, name: Token) -> n.Path | n.Index:
        if isinstance(recv, n.Path):
            return n.Path(recv.scope, (*recv.parts, name.value), recv.bare, recv.pos, recv.side)
        key = n.Lit(name.value, "string", repr(name.value), _pos(name))
        return n.Index(recv, key, _pos(name))

    def index(self, recv: n.Expr, _l: Token, key: n.Expr, _r: Token) -> n.Path | n.Index:
        if isinstance(recv, n.Path) and isinstance(key, n.Lit) and key.kind == "string":
            part = cast(str, key.value)  # a string literal's value
            return n.Path(recv.scope, (*recv.parts, part), recv.bare, recv.pos, recv.side)
        return n.Index(recv, key, _pos(_l))

    def method(self, recv: n.Expr, _dot: Token, name: Token, _lpar: Token, *rest: Any) -> n.Call:
        args = rest[0] if len(rest) == 2 else None
        args, names = _split_args(args)
        names = (None, *names) if names else ()
        return n.Call(name.value, (recv, *args), True, _pos(name), names)

    def call(self, name: Token, _lpar: Token, *rest: Any) -> n.Call:
        args = rest[0] if len(rest) == 2 else None
        args, names = _split_args(args)
        return n.Call(name.value, args, False, _pos(name), names)

    def cast(self, expr: n.Expr, _colon: Token, type_: Token) -> n.Cast:
        return n.Cast(expr, type_.value, _pos(type_))

    @_list_callback
    def args(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items[::2])  # arg, COMMA, arg, ...

    def named_arg(self, name: Token, _eq: Token, expr: n.Expr) -> _NamedArg:
        return _NamedArg(name.value, expr)

    def paren(self, _l: Token, expr: n.Expr, _r: Token) -> n.Expr:
        return expr

    def array(self, lsqb: Token, *rest: Any) -> n.Array:
        args = rest[0] if len(rest) == 2 else None
        items, names = _split_args(args)
        if names:
            raise QueryError(
                "an array holds values, not `name=value`", lsqb.line or 1, lsqb.column or 1
            )
        return n.Array(items, _pos(lsqb))

    def case(self, kw: Token, _lb: Token, *raw: Any) -> n.Case:
        items = [i for i in raw if not isinstance(i, _TOKENS) and i is not None]
        subject = None
        if kw.value != "case":
            head, result = items[0]
            if result is not None:
                raise QueryError(
                    f"`{kw.value}` starts with the value to test, e.g. "
                    f"`{kw.value} {{ $d.msg, 'x' -> 1, _ -> 0 }}`",
                    kw.line or 1,
                    kw.column or 1,
                )
            subject, items = head, items[1:]
        clauses: list[tuple[n.Expr, n.Expr]] = []
        default = None
        for cond, result in items:
            if result is None:
                p = expr_pos(cond)
                raise QueryError("expected `->` and a result in the case clause", p.line, p.column)
            if isinstance(cond, n.Path) and cond.bare and cond.parts == ("_",):
                default = result
            else:
                clauses.append((cond, result))
        return n.Case(kw.value, subject, tuple(clauses), default, _pos(kw))

    def case_item(
        self, cond: n.Expr, _arrow: Token | None = None, result: n.Expr | None = None
    ) -> tuple[n.Expr, n.Expr | None]:
        return (cond, result)

    @_list_callback
    def string(self, c: list[Any]) -> n.Lit:
        tok = c[0]
        raw = tok.value
        value = _unquote(raw) if "\\" in raw else raw[1:-1]
        return n.Lit(value, "string", raw, n.Pos(tok.line, tok.column))

    def regex(self, tok: Token) -> n.Lit:
        return n.Lit(tok.value[1:-1], "regex", tok.value, _pos(tok))

    def template(self, tok: Token) -> n.Template:
        return _template(tok)

    def timestamp(self, at: Token, inner: n.Expr) -> n.TimestampOf:
        if isinstance(inner, n.Lit) and inner.kind == "string":
            ns = 0 if inner.value == "now" else parse_timestamp(str(inner.value))
            if ns is None:
                raise QueryError(
                    f"`@{inner.text}` is not a timestamp: use ISO-8601, e.g. "
                    "`@'2024-01-15T10:00:00Z'`",
                    inner.pos.line,
                    inner.pos.column,
                )
        return n.TimestampOf(inner, _pos(at))

    @_list_callback
    def number(self, c: list[Any]) -> n.Lit:
        tok = c[0]
        text = tok.value
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return n.Lit(value, "number", text, _pos(tok))

    def duration(self, tok: Token) -> n.Lit:
        return n.Lit(duration_ns(tok.value), "duration", tok.value, _pos(tok))

    def true(self, tok: Token) -> n.Lit:
        return n.Lit(True, "bool", "true", _pos(tok))

    def false(self, tok: Token) -> n.Lit:
        return n.Lit(False, "bool", "false", _pos(tok))

    def null(self, tok: Token) -> n.Lit:
        return n.Lit(None, "null", "null", _pos(tok))


def _side_split(items: tuple[Any, ...]) -> tuple[Token | None, Token, tuple[Any, ...]]:
    if isinstance(items[0], _TOKENS) and items[0].type == "SIDE":
        return items[0], items[1], items[2:]
    return None, items[0], items[1:]


def _split_args(args: tuple[Any, ...] | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    if not args:
        return (), ()
    if not any(isinstance(a, _NamedArg) for a in args):
        return tuple(args), ()
    return (
        tuple(a.expr if isinstance(a, _NamedArg) else a for a in args),
        tuple(a.name if isinstance(a, _NamedArg) else None for a in args),
    )


_TEMPLATE_PART = re.compile(r"\\(.)|\{([^{}]*)\}|([^\\{]+)|(\{)", re.S)


def _template(tok: Token) -> n.Template:
    body = tok.value[1:-1]
    parts: list[str | n.Expr] = []
    for m in _TEMPLATE_PART.finditer(body):
        escaped, inner, plain, brace = m.groups()
        if escaped is not None:
            parts.append(escaped)
        elif plain is not None or brace is not None:
            parts.append(plain if plain is not None else brace)
        elif inner.strip():
            try:
                parts.append(cast(n.Expr, _parse(inner, "expr")))
            except (UnexpectedInput, VisitError) as exc:
                raise QueryError(
                    f"invalid expression `{{{inner}}}` in the template string",
                    tok.line or 1,
                    tok.column or 1,
                ) from exc
    return n.Template(tuple(parts), tok.value, _pos(tok))


def _callbacks() -> object:
    impl = _ToAst()
    ns = types.SimpleNamespace()
    for name in dir(_ToAst):
        if not name.startswith("_"):
            method = getattr(impl, name)
            if getattr(method, "takes_list", False):
                setattr(ns, name, method)
            else:
                setattr(ns, name, lambda children, _m=method: _m(*children))
    return ns


_GRAMMAR_TEXT = (FsPath(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")


def _lark(plugins: dict[str, Any]) -> Lark:
    return Lark(
        _GRAMMAR_TEXT,
        start=["query", "expr"],
        parser="lalr",
        lexer="contextual",
        transformer=_callbacks(),
        # No placeholders for missing optionals: lark's placeholder-aware child filter costs
        # more per reduction, and the callbacks above take their optional parts positionally.
        maybe_placeholders=False,
        propagate_positions=False,
        cache=False,
        _plugins=plugins,
    )


# Valid text takes the compiled parser; anything it refuses is parsed again by _pure().
_FAST = _lark(_PLUGINS)


@lru_cache(maxsize=1)
def _pure() -> Lark:
    """The pure-Python parser words every error: its exceptions carry the expected-token sets
    and the interactive parser the messages below use, which the compiled one lacks. Built on
    the first refusal (~0.2 s), so a service that never words an error does not hold a second
    copy of the tables (~2 MiB); the validation service builds it at startup (warm())."""
    return _lark({}) if _PLUGINS else _FAST


def warm() -> None:
    """Build the error-wording parser now, so the first refused query is not the slow one."""
    _pure()


def _fast_parse(text: str, start: str) -> object | None:
    if not _PLUGINS:
        return None  # _FAST is the pure parser: the caller's own parse says why
    try:
        return _FAST.parse(text, start=start)
    except Exception:  # refused or failed: _pure() parses it again and says why
        return None


def _parse(text: str, start: str) -> object:
    """The compiled parser's result, or the pure parser's (and its worded exception)."""
    fast = _fast_parse(text, start)
    return fast if fast is not None else _pure().parse(text, start=start)


# ------------------------------------------------------------- error mapping

_KEYWORD_TERMS = {
    t.name for t in _FAST.terminals if t.pattern.type == "str" and t.pattern.value.isidentifier()
}


def _command_start() -> frozenset[str]:
    """The terminals that can open a query: the commands (read from the pure parser's table)."""
    table = _pure().parser.parser.parser.parse_table
    return frozenset(table.states[table.start_states["query"]])


_PUNCT = {
    "PIPE": "`|`", "OR": "`||`", "AND": "`&&`", "EQ": "`==`", "NE": "`!=`", "LE": "`<=`",
    "GE": "`>=`", "LT": "`<`", "GT": "`>`", "TILDE2": "`~~`", "TILDE": "`~`", "BANG": "`!`",
    "ARROW": "`->`", "PLUS": "`+`", "MINUS": "`-`", "STAR": "`*`", "SLASH": "`/`",
    "PERCENT": "`%`", "ASSIGN": "`=`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`",
    "RSQB": "`]`", "LBRACE": "`{`", "RBRACE": "`}`", "COMMA": "`,`", "DOT": "`.`",
    "COLON": "`:`", "AT": "`@`", "STRING": "a string", "NUMBER": "a number",
    "DURATION": "an interval such as `1h`", "REGEX": "a /regex/", "DATASET": "a dataset name",
    "$END": "end of query",
}  # fmt: skip


def _kw_text(term: str) -> str:
    return next(t.pattern.value for t in _FAST.terminals if t.name == term)


def keyword_classes() -> dict[str, list[str]]:
    """Keyword lists for the frontend highlighter, read from the grammar itself."""
    commands = sorted({_kw_text(t) for t in _command_start() if t in _KEYWORD_TERMS})
    literals = ["false", "null", "true"]
    clauses = sorted({_kw_text(t) for t in _KEYWORD_TERMS} - set(commands) - set(literals))
    return {"command": commands, "keyword": clauses, "literal": literals}


_PREV_TOKEN = re.compile(
    r"(\|\||&&|==|!=|<=|>=|'[^']*'|\"[^\"]*\"|[$\w][\w.$]*|[|()<>,~!+\-*/%.=\[\]{}])\s*$"
)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def _eof_pos(text: str) -> tuple[int, int]:
    """Position just after the last non-blank character (where input 'ended')."""
    return _line_col(text, len(text.rstrip()))


def _offset(text: str, line: int, column: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    return start + column - 1


def _prev_token(text: str, offset: int) -> str:
    m = _PREV_TOKEN.search(text[:offset])
    return m.group(1) if m else ""


_STRINGS_AND_BRACKETS = re.compile(
    r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|`(?:[^`\\]|\\.)*`|[()\[\]{}]"
)


def _unclosed_paren(text: str, offset: int) -> tuple[int, int] | None:
    """Position of the last `(` before offset that has no `)` (strings skipped)."""
    stack: list[int] = []
    for m in _STRINGS_AND_BRACKETS.finditer(text[:offset]):
        if m.group() == "(":
            stack.append(m.start())
        elif m.group() == ")" and stack:
            stack.pop()
    return _line_col(text, stack[-1]) if stack else None


def nesting_error(text: str) -> QueryError | None:
    """Refuse brackets nested deeper than MAX_NESTING before any recursive code sees them."""
    if text.count("(") + text.count("[") + text.count("{") <= MAX_NESTING:
        return None  # cannot be that deep: skip the scan (the common case, C-speed counts)
    depth = 0
    for m in _STRINGS_AND_BRACKETS.finditer(text):
        ch = m.group()
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                line, col = _line_col(text, m.start())
                return QueryError(
                    f"brackets nested deeper than {MAX_NESTING} levels; simplify the expression",
                    line,
                    col,
                )
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return None


# Which clause keywords / separators each command can legally take; LALR merges
# lookaheads across contexts, so we narrow lark's expected set with this.
_COMMAND_CLAUSES: dict[str, set[str]] = {
    "groupby": {"AS", "AGGREGATE", "AGG", "CALCULATE", "CALC", "COMMA"},
    "multigroupby": {"AS", "AGGREGATE", "AGG", "CALCULATE", "CALC", "COMMA"},
    "orderby": {"ASC", "DESC", "COMMA"},
    "sortby": {"ASC", "DESC", "COMMA"},
    "order": {"ASC", "DESC", "COMMA"},
    "sort": {"ASC", "DESC", "COMMA"},
    "top": {"AS", "BY", "COMMA"},
    "bottom": {"AS", "BY", "COMMA"},
    "countby": {"INTO", "AS"},
    "count": {"INTO"},
    "dedupeby": {"KEEP", "COMMA"},
    "choose": {"AS", "COMMA"},
    "select": {"AS", "COMMA"},
    "aggregate": {"AS", "COMMA"},
    "distinct": {"AS", "COMMA"},
    "remove": {"COMMA"},
    "r": {"COMMA"},
    "create": {"FROM", "ON"},
    "add": {"FROM", "ON"},
    "c": {"FROM", "ON"},
    "a": {"FROM", "ON"},
    "extract": {"INTO", "USING", "DATATYPES", "COMMA"},
    "e": {"INTO", "USING", "DATATYPES", "COMMA"},
    "explode": {"INTO", "ORIGINAL"},
    "find": {"IN"},
    "text": {"IN"},
    "replace": {"WITH"},
    "redact": {"MATCHING", "TO"},
    "move": {"TO"},
    "m": {"TO"},
    "convert": {"DATATYPES", "COMMA"},
    "conv": {"DATATYPES", "COMMA"},
    "roundtime": {"TO", "INTO"},
    "enrich": {"INTO", "USING"},
    "join": {"ON", "USING", "INTO", "COMMA"},
    "stitch": {"INTO"},
    "source": {"LAST", "BETWEEN", "TIMESHIFTED", "AROUND", "AND_KW", "INTERVAL_KW"},
}
_SEGMENT_SPLIT = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|\|\||\|")


def _current_command(text: str, offset: int) -> str:
    """First word of the pipeline segment containing offset (strings skipped)."""
    start = 0
    for m in _SEGMENT_SPLIT.finditer(text[:offset]):
        if m.group() == "|":
            start = m.end()
    word = re.match(r"\s*(\w+)", text[start:offset])
    return word.group(1) if word else ""


def _narrow(expected: set[str], text: str, offset: int) -> set[str]:
    command = _current_command(text, offset)
    allowed = _COMMAND_CLAUSES.get(command, set())
    narrowed = {t for t in expected if t not in _CLAUSE_KEYWORDS and t != "COMMA"}
    narrowed |= expected & allowed
    if "RPAR" in narrowed and _unclosed_paren(text, offset) is None:
        narrowed.discard("RPAR")
    opened = _STRINGS_AND_BRACKETS.findall(text[:offset])
    if opened.count("[") <= opened.count("]"):
        narrowed.discard("RSQB")
    if opened.count("{") <= opened.count("}"):
        narrowed -= {"RBRACE", "ARROW"}
    return narrowed


def _describe_expected(expected: set[str]) -> str:
    parts: list[str] = []
    if expected >= {"FILTER", "SOURCE"}:
        return "a command such as `filter`, `groupby` or `limit`"
    if expected <= {"IDENT", "VARIABLE", "SIDE", "PATH"}:
        parts.append("a field name such as `total` or `$d.total`")
    elif "IDENT" in expected or "VARIABLE" in expected:
        parts.append("an expression")
    elif expected == {"NUMBER"}:
        parts.append("a number")
    elif expected == {"STRING", "NUMBER"}:  # a dataset parameter's value
        return "a string or a number"
    for kw in sorted(expected & _KEYWORD_TERMS, key=_kw_text):
        if kw not in ("TRUE", "FALSE", "NULL") and not kw.startswith("CASE"):
            parts.append(f"`{_kw_text(kw)}`")
    ops = expected & (_OPERATORS - {"DOT", "LSQB", "COLON", "IN"})
    if ops and "IDENT" not in expected:
        parts.append("an operator")
    for term in ("ARROW", "ASSIGN", "RPAR", "RSQB", "RBRACE", "COMMA", "PIPE", "STRING", "$END"):
        if term in expected and not (term == "STRING" and "IDENT" in expected):
            parts.append(_PUNCT[term])
    if not parts:
        return "something else"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _unknown_command(word: str, line: int, column: int) -> QueryError:
    hint = _did_you_mean(word, COMMAND_NAMES)
    return QueryError(f"unknown command `{word}`{hint}", line, column)


def _did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word.lower(), candidates, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _shown(text: str, offset: int, value: str) -> str:
    """The word at offset as the user wrote it (`$d.b` rather than lark's `$d`)."""
    m = re.match(r"[$\w][\w.]*", text[offset:])
    return m.group().rstrip(".") if m and m.group().startswith(value) else value


def _friendly(err: UnexpectedInput, text: str) -> QueryError:
    if isinstance(err, UnexpectedCharacters):
        line, col = err.line, err.column
        at = cast(int, err.pos_in_stream)  # always set for UnexpectedCharacters (lark)
        ch = text[at] if at < len(text) else ""
        if ch in "'\"`":
            return QueryError("unterminated string", line, col)
        if ch == "&":
            return QueryError("unexpected `&`: use `&&` for 'and'", line, col)
        if ch == "=":
            return QueryError("unexpected `=`: use `==` to compare", line, col)
        if ch == "/":
            return QueryError("unterminated /regex/ literal", line, col)
        shown = ch if ch.isprintable() else repr(ch)
        return QueryError(f"unexpected character `{shown}`", line, col)

    assert isinstance(err, UnexpectedToken)
    tok = err.token
    expected = set(err.expected)
    if tok.type == "$END":
        end = len(text.rstrip())
    else:
        end = _offset(text, tok.line or 1, tok.column or 1)
    command_position = _at_command_start(text, end)
    if command_position:
        expected |= {"FILTER", "SOURCE"}
    if tok.type == "$END":
        line, col = _eof_pos(text)
        offset = len(text.rstrip())
        prev = _prev_token(text, offset)
        if not text.strip() or not _strip_comments(text).strip():
            return QueryError("empty query: expected a command such as `source logs`", 1, 1)
        if command_position:
            return QueryError("expected a command after `|`", line, col)
        if prev in _NUMBER_COMMANDS:
            return QueryError(f"`{prev}` needs a positive number", line, col)
        if "RPAR" in expected and (open_at := _unclosed_paren(text, offset)):
            return QueryError(
                f"missing `)`: the `(` at line {open_at[0]}, column {open_at[1]} is never closed",
                line,
                col,
            )
        expected = _narrow(expected, text, offset)
        return QueryError(
            f"unexpected end of query after `{prev}`: expected {_describe_expected(expected)}",
            line,
            col,
        )

    line, col = tok.line or 1, tok.column or 1
    value = str(tok.value)
    offset = _offset(text, line, col)
    prev = _prev_token(text, offset)
    if bad := _bad_command_word(text, offset):
        return bad
    if command_position:
        if tok.type in ("IDENT", "VARIABLE", "DATASET", "PATH") or value.isidentifier():
            word = _shown(text, offset, value)
            return QueryError(
                f"unknown command `{word}`" + _did_you_mean(word, COMMAND_NAMES), line, col
            )
        after = "after `|`" if prev == "|" else "at the start of the query"
        return QueryError(f"expected a command {after}, got `{value}`", line, col)
    if expected == {"NUMBER"} and prev in _NUMBER_COMMANDS:
        return QueryError(f"`{prev}` needs a positive number", line, col)
    if tok.type == "ASSIGN":
        return QueryError("unexpected `=`: use `==` to compare", line, col)
    if tok.type == "SLASH" and "REGEX" in expected:
        return QueryError("unterminated /regex/ literal", line, col)
    if tok.type == "TILDE" and prev in ("filter", "f", "where", "block", "(", "&&", "||", "!"):
        return QueryError(
            "`~` compares a field with text: write `$d.field ~ 'text'`, or `$d ~~ 'text'` to "
            "search the whole document",
            line,
            col,
        )
    if misspelt := _misspelt_clause(text, offset, prev):
        return misspelt
    if expected == {"IDENT"} and _DATASET_PARAM_START.search(text[:offset]):
        return QueryError(
            f"unexpected `{value}`: expected a dataset parameter such as `teamId='58942'`",
            line,
            col,
        )
    expected = _narrow(expected, text, offset)
    if tok.type == "RPAR":
        if _unclosed_paren(text, offset) is None:
            return QueryError("unexpected `)`: there is no matching `(`", line, col)
        return QueryError(f"unexpected `)`: expected {_describe_expected(expected)}", line, col)
    hint = ""
    if tok.type in ("IDENT", "DATASET", "PATH"):
        keywords = [_kw_text(k) for k in expected & _KEYWORD_TERMS]
        hint = _did_you_mean(value, keywords)
    shown = _shown(text, offset, value) if tok.type in ("VARIABLE", "IDENT", "PATH") else value
    return QueryError(
        f"unexpected `{shown}`: expected {_describe_expected(expected)}{hint}", line, col
    )


# `source logs(` or `union logs(teamId=1, `: a dataset's parameter list, where a name belongs.
_DATASET_PARAM_START = re.compile(r"\b(?:source|from|union)\s+[\w./-]+\s*\((?:[^()|]*,)?\s*$")


def _at_command_start(text: str, offset: int) -> bool:
    """Nothing but blanks and comments between the last top-level `|` (or the start) and offset."""
    start = 0
    for m in _SEGMENT_SPLIT.finditer(text[:offset]):
        if m.group() == "|":
            start = m.end()
    return not _strip_comments(text[start:offset]).strip()


def _bad_command_word(text: str, offset: int) -> QueryError | None:
    """The segment starts with a word that is no command (`fliter $d.x`): the parser only
    notices one token later, so name the word itself."""
    start = 0
    for m in _SEGMENT_SPLIT.finditer(text[:offset]):
        if m.group() == "|":
            start = m.end()
    word = re.match(r"\s*(?:(?://|#)[^\n]*\n\s*)*([A-Za-z_][\w.]*)", text[start:offset])
    if word is None or word.group(1) in COMMAND_NAMES or word.group(1) in ("order", "sort"):
        return None
    if word.end(1) + start > offset:
        return None
    line, col = _line_col(text, start + word.start(1))
    return _unknown_command(word.group(1), line, col)


def _misspelt_clause(text: str, offset: int, prev: str) -> QueryError | None:
    """`groupby x agregate count()`: the typo parses as a field, the error comes one word
    later; point at the typo itself when it is close to a clause word of this command."""
    if not prev.isidentifier():
        return None
    clauses = [
        _kw_text(k)
        for k in _COMMAND_CLAUSES.get(_current_command(text, offset), set())
        if k in _KEYWORD_TERMS
    ]
    close = difflib.get_close_matches(prev.lower(), clauses, n=1, cutoff=0.75)
    if not close or prev.lower() in clauses:
        return None
    start = text.rfind(prev, 0, offset)
    line, col = _line_col(text, start)
    return QueryError(f"unexpected `{prev}`: did you mean `{close[0]}`?", line, col)


_COMMENTS = re.compile(r"'(?:[^'\\\n]|\\.)*'|(?://|#)[^\n]*|/\*(?:[^*]|\*(?!/))*\*/")


def _strip_comments(text: str) -> str:
    return _COMMENTS.sub(lambda m: m.group() if m.group().startswith("'") else "", text)


# -------------------------------------------------------------------- public


# U+FFFD is what a lenient decoder leaves for bad bytes; lone surrogates are what
# `surrogateescape` leaves. Neither is text a user typed.
_NOT_UTF8 = re.compile("[\ufffd\ud800-\udfff]")


def precheck(text: str) -> QueryError | None:
    """Input limits checked before parsing (size, NUL and control bytes, nesting)."""
    if len(text) > MAX_QUERY_CHARS:
        return QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters", 1, 1)
    if "\x00" in text:
        line, col = _line_col(text, text.index("\x00"))
        return QueryError("the query contains a NUL byte", line, col)
    bad = None if text.isascii() else _NOT_UTF8.search(text)
    if bad is not None:
        line, col = _line_col(text, bad.start())
        return QueryError("the query is not valid UTF-8", line, col)
    return nesting_error(text)


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> n.Query | QueryError:
    # Cache failures too: the web services see the same bad queries repeatedly.
    early = precheck(text)
    if early is not None:
        return early
    try:
        # The parser runs its transformer inline: parse() returns our nodes, not a lark Tree.
        return cast(n.Query, _parse(text, "query"))
    except QueryError as exc:
        return exc
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            return exc.orig_exc
        raise
    except UnexpectedInput as exc:
        return _friendly(exc, text)
    except RecursionError:
        return QueryError("the query is nested too deeply", 1, 1)


def parse_expression(text: str) -> n.Expr:
    """Parse one expression (no pipeline); raises ``QueryError``."""
    early = precheck(text)
    if early is not None:
        raise early
    try:
        return cast(n.Expr, _parse(text, "expr"))
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise _friendly(exc, text) from None


def parse(text: str) -> n.Query:
    """Parse a query; raises ``QueryError`` (never a lark exception)."""
    result = _parse_cached(text)
    if isinstance(result, QueryError):
        raise QueryError(result.message, result.line, result.column)
    return result
