"""Parse DataPrime text into the typed AST in ``nodes.py``.

The lark LALR parser is built once at import with the transformer embedded, so
parsing builds our AST directly (no intermediate lark tree). Lark exceptions are
translated into ``QueryError`` with user-facing messages; lark's terminal names
never reach the user.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path as FsPath

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import nodes as n
from .errors import QueryError

# ----------------------------------------------------------------- constants

COMMAND_NAMES: tuple[str, ...] = (
    "source",
    "filter",
    "f",
    "where",
    "block",
    "groupby",
    "aggregate",
    "count",
    "countby",
    "orderby",
    "sortby",
    "limit",
    "choose",
    "select",
    "create",
    "add",
    "remove",
    "distinct",
    "top",
    "bottom",
    "dedupeby",
)
_COMMAND_TERMS = frozenset(c.upper() for c in COMMAND_NAMES)
_EXPR_START = frozenset(
    {"STRING", "NUMBER", "DURATION", "TRUE", "FALSE", "NULL", "IDENT", "KEYPATH", "LPAR"}
)
_OPERATORS = frozenset(
    {"OR", "AND", "EQ", "NE", "LT", "LE", "GT", "GE", "TILDE", "PLUS", "MINUS", "STAR", "SLASH"}
    | {"PERCENT", "DOT"}
)
_CLAUSE_KEYWORDS = ("AS", "BY", "FROM", "INTO", "ASC", "DESC", "KEEP", "AGGREGATE", "AGG")
_NUMBER_COMMANDS = {"limit", "top", "bottom", "keep"}

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
_SCOPES = {"data": "d", "labels": "l", "metadata": "m", "d": "d", "l": "l", "m": "m"}
_ESCAPES = re.compile(r"\\(.)")
_ESCAPE_MAP = {"n": "\n", "t": "\t", "r": "\r"}


def duration_ns(text: str) -> int:
    """`1h30m` -> nanoseconds."""
    return sum(int(v) * _DURATION_UNITS_NS[u] for v, u in _DURATION_PART.findall(text))


def _pos(tok: Token) -> n.Pos:
    return n.Pos(tok.line or 1, tok.column or 1)


def _path_from_text(text: str, pos: n.Pos) -> n.Path:
    if text.startswith("$"):
        head, *parts = text[1:].split(".")
        return n.Path(_SCOPES[head], tuple(parts), False, pos)
    return n.Path("d", tuple(text.split(".")), True, pos)


def expr_pos(e: n.Expr) -> n.Pos:
    if isinstance(e, n.Binary):
        return expr_pos(e.left)
    return e.pos


def _unquote(raw: str) -> str:
    return _ESCAPES.sub(lambda m: _ESCAPE_MAP.get(m.group(1), m.group(1)), raw[1:-1])


def _no_tokens(items: tuple) -> list:
    return [i for i in items if not isinstance(i, Token) and i is not None]


@v_args(inline=True)
class _ToAst(Transformer):
    """Builds nodes.* objects while LALR reduces (embedded in the parser)."""

    # ---- commands
    def query(self, *items):
        return n.Query(tuple(_no_tokens(items)))

    def source(self, kw, name):
        return n.Source(name.value, _pos(kw), _pos(name))

    def filter(self, kw, expr):
        return n.Filter(expr, _pos(kw))

    def block(self, kw, expr):
        return n.Block(expr, _pos(kw))

    def groupby(self, kw, keys, _aggkw, aggs):
        return n.GroupBy(keys, aggs or (), _pos(kw))

    def aggregate(self, kw, aggs):
        return n.Aggregate(aggs, _pos(kw))

    def count(self, kw, _into, target):
        return n.Count(target, _pos(kw))

    def countby(self, kw, expr, _into, target):
        return n.CountBy(expr, target, _pos(kw))

    def orderby(self, kw, *items):
        return n.OrderBy(tuple(_no_tokens(items)), _pos(kw))

    def order_item(self, expr, direction):
        return (expr, direction is not None and direction.type == "DESC")

    def limit(self, kw, num):
        return n.Limit(float(num.value), num.value, _pos(kw), _pos(num))

    def choose(self, kw, items):
        return n.Choose(items, _pos(kw))

    def create(self, kw, target, _from, expr):
        return n.Create(target, expr, _pos(kw))

    def remove(self, kw, *targets):
        return n.Remove(tuple(_no_tokens(targets)), _pos(kw))

    def distinct(self, kw, *exprs):
        return n.Distinct(tuple(_no_tokens(exprs)), _pos(kw))

    def top(self, kw, num, items, _by, by):
        return n.Top(
            float(num.value), num.value, items, by, kw.type == "BOTTOM", _pos(kw), _pos(num)
        )

    def dedupeby(self, kw, *rest):
        num = rest[-1]
        exprs = tuple(_no_tokens(rest[:-2]))
        return n.DedupeBy(exprs, float(num.value), num.value, _pos(kw), _pos(num))

    def named_list(self, *items):
        return tuple(_no_tokens(items))

    def named(self, expr, _as, target):
        return n.Named(expr, target)

    def target(self, tok):
        return _path_from_text(tok.value, _pos(tok))

    # ---- expressions
    def binop(self, left, op, right):
        return n.Binary(op.value, left, right, _pos(op))

    def unop(self, op, operand):
        return n.Unary(op.value, operand, _pos(op))

    def method(self, recv, _dot, name, _lpar, args, _rpar):
        return n.Call(name.value, (recv, *(args or ())), True, _pos(name))

    def call(self, name, _lpar, args, _rpar):
        args = tuple(args or ())
        text = name.value
        if "." in text:  # `$d.msg.contains('x')` / `msg.contains('x')`: method on a path
            recv_text, _, fn = text.rpartition(".")
            column = (name.column or 1) + len(recv_text) + 1
            recv = _path_from_text(recv_text, _pos(name))
            return n.Call(fn, (recv, *args), True, n.Pos(name.line or 1, column))
        if text.startswith("$"):
            raise QueryError(f"`{text}` is not a function", name.line or 1, name.column or 1)
        return n.Call(text, args, False, _pos(name))

    def args(self, *items):
        return tuple(_no_tokens(items))

    def paren(self, _l, expr, _r):
        return expr

    def string(self, tok):
        return n.Lit(_unquote(tok.value), "string", tok.value, _pos(tok))

    def number(self, tok):
        text = tok.value
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return n.Lit(value, "number", text, _pos(tok))

    def duration(self, tok):
        return n.Lit(duration_ns(tok.value), "duration", tok.value, _pos(tok))

    def true(self, tok):
        return n.Lit(True, "bool", "true", _pos(tok))

    def false(self, tok):
        return n.Lit(False, "bool", "false", _pos(tok))

    def null(self, tok):
        return n.Lit(None, "null", "null", _pos(tok))

    def path(self, tok):
        return _path_from_text(tok.value, _pos(tok))


_LARK = Lark(
    (FsPath(__file__).with_name("grammar.lark")).read_text(encoding="utf-8"),
    start="query",
    parser="lalr",
    lexer="contextual",
    transformer=_ToAst(),
    maybe_placeholders=True,
    propagate_positions=False,
    cache=False,
)

# ------------------------------------------------------------- error mapping

_PREV_TOKEN = re.compile(
    r"(\|\||&&|==|!=|<=|>=|'[^']*'|\"[^\"]*\"|[$\w][\w.$]*|[|()<>,~!+\-*/%.=])\s*$"
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


def _unclosed_paren(text: str, offset: int) -> tuple[int, int] | None:
    """Position of the last `(` before offset that has no `)` (strings skipped)."""
    stack: list[int] = []
    for m in re.finditer(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|[()]", text[:offset]):
        if m.group() == "(":
            stack.append(m.start())
        elif m.group() == ")" and stack:
            stack.pop()
    return _line_col(text, stack[-1]) if stack else None


# Which clause keywords / separators each command can legally take; LALR merges
# lookaheads across contexts, so we narrow lark's expected set with this.
_COMMAND_CLAUSES: dict[str, set[str]] = {
    "groupby": {"AS", "AGGREGATE", "AGG", "COMMA"},
    "orderby": {"ASC", "DESC", "COMMA"},
    "sortby": {"ASC", "DESC", "COMMA"},
    "top": {"AS", "BY", "COMMA"},
    "bottom": {"AS", "BY", "COMMA"},
    "countby": {"INTO"},
    "count": {"INTO"},
    "dedupeby": {"KEEP", "COMMA"},
    "choose": {"AS", "COMMA"},
    "select": {"AS", "COMMA"},
    "aggregate": {"AS", "COMMA"},
    "distinct": {"COMMA"},
    "remove": {"COMMA"},
    "create": {"FROM"},
    "add": {"FROM"},
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
    return narrowed


def _describe_expected(expected: set[str]) -> str:
    parts: list[str] = []
    if expected >= {"FILTER", "SOURCE"}:
        parts.append("a command such as `filter`, `groupby` or `limit`")
    elif expected <= {"IDENT", "KEYPATH"}:
        parts.append("a field name such as `total` or `$d.total`")
    elif "IDENT" in expected or "KEYPATH" in expected:
        parts.append("an expression")
    elif expected == {"NUMBER"}:
        parts.append("a number")
    for kw in _CLAUSE_KEYWORDS:
        if kw in expected and not expected >= {"FILTER", "SOURCE"}:
            parts.append(f"`{kw.lower()}`")
    if expected & (_OPERATORS - {"DOT"}) and "IDENT" not in expected:
        parts.append("an operator")
    if "RPAR" in expected:
        parts.append("`)`")
    if "COMMA" in expected:
        parts.append("`,`")
    if "PIPE" in expected:
        parts.append("`|`")
    if "$END" in expected:
        parts.append("end of query")
    if not parts:
        return "something else"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _friendly(err: UnexpectedInput, text: str) -> QueryError:
    if isinstance(err, UnexpectedCharacters):
        line, col = err.line, err.column
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        if ch in "'\"":
            return QueryError("unterminated string", line, col)
        if ch == "$":
            word = re.match(r"\$\w*", text[err.pos_in_stream :]).group()
            return QueryError(
                f"unknown keypath prefix `{word}`: use `$d` (data), `$l` (labels) or `$m` "
                "(metadata)",
                line,
                col,
            )
        if ch == "=":
            return QueryError("unexpected `=`: use `==` to compare", line, col)
        if ch in "&":
            return QueryError("unexpected `&`: use `&&` for 'and'", line, col)
        return QueryError(f"unexpected character `{ch}`", line, col)

    assert isinstance(err, UnexpectedToken)
    tok = err.token
    expected = set(err.expected)
    command_position = expected >= {"FILTER", "SOURCE"}
    if tok.type == "$END":
        line, col = _eof_pos(text)
        offset = len(text.rstrip())
        prev = _prev_token(text, offset)
        if not text.strip():
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
    if command_position:
        if tok.type in ("IDENT", "KEYPATH") or value.isidentifier():
            return QueryError(
                f"unknown command `{value}`" + _did_you_mean(value, COMMAND_NAMES), line, col
            )
        after = "after `|`" if prev == "|" else "at the start of the query"
        return QueryError(f"expected a command {after}, got `{value}`", line, col)
    if expected == {"NUMBER"} and prev in _NUMBER_COMMANDS:
        return QueryError(f"`{prev}` needs a positive number", line, col)
    expected = _narrow(expected, text, offset)
    if tok.type == "RPAR":
        if _unclosed_paren(text, offset) is None:
            return QueryError("unexpected `)`: there is no matching `(`", line, col)
        return QueryError(f"unexpected `)`: expected {_describe_expected(expected)}", line, col)
    hint = ""
    if tok.type == "IDENT":
        keywords = [k.lower() for k in _CLAUSE_KEYWORDS if k in expected]
        hint = _did_you_mean(value, keywords)
    return QueryError(
        f"unexpected `{value}`: expected {_describe_expected(expected)}{hint}", line, col
    )


# -------------------------------------------------------------------- public


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> n.Query | QueryError:
    # Cache failures too: the web services see the same bad queries repeatedly.
    try:
        return _LARK.parse(text)
    except QueryError as exc:
        return exc
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            return exc.orig_exc
        raise
    except UnexpectedInput as exc:
        return _friendly(exc, text)


def parse(text: str) -> n.Query:
    """Parse a query; raises ``QueryError`` (never a lark exception)."""
    result = _parse_cached(text)
    if isinstance(result, QueryError):
        raise QueryError(result.message, result.line, result.column)
    return result
