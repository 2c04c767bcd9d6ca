"""Typed AST for DataPrime.

Not frozen on purpose: a frozen dataclass sets every field through `object.__setattr__`,
which made building the AST a measurable share of validation time; nothing mutates nodes
after the parser builds them.

Why our own AST instead of lark trees: the validator, the printer and the executor
all walk the query; plain dataclasses are faster to walk than lark trees
and decouple the rest of the package from lark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# ---------------------------------------------------------------- expressions


class Pos(NamedTuple):
    """1-based line/column (a tuple: the parser makes one per node, cheaply)."""

    line: int
    column: int


@dataclass(slots=True)
class Lit:
    value: object  # str | float | int | bool | None ; durations are int nanoseconds
    kind: str  # "string" | "number" | "duration" | "bool" | "null"
    text: str  # source text, used by the printer to round-trip literals verbatim
    pos: Pos = field(compare=False)


def part_text(part: str) -> str:
    """`.name` for identifier-like keys, `['http.route']` for the rest (dots, dashes...)."""
    if part.isidentifier():
        return "." + part
    return "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"


@dataclass(slots=True)
class Path:
    scope: str  # "d" | "l" | "m" | "p" (query parameters)
    parts: tuple[str, ...]
    bare: bool  # written without `$d.` (e.g. `status_code`)
    pos: Pos = field(compare=False)
    side: str | None = None  # `left=>` / `right=>` inside a join condition

    @property
    def key(self) -> str:
        """Canonical storage key used by the executor's flat records.

        `$d.tags['region']` and `$d.tags.region` are the same key; `$d.tags['http.route']`
        keeps its brackets so it never collides with the nested path `$d.tags.http.route`.
        """
        return (
            "$"
            + self.scope
            + "".join(["." + p if p.isidentifier() else part_text(p) for p in self.parts])
        )


@dataclass(slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    method: bool  # written as `recv.name(...)`; args[0] is the receiver
    pos: Pos = field(compare=False)
    names: tuple[str | None, ...] = ()  # named arguments (`regexp(e=/x/)`); empty if none


@dataclass(slots=True)
class Cast:
    """`expr:type`, e.g. `$d.tags['http.status_code']:number`."""

    expr: Expr
    type: str
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Index:
    """`expr[i]` / `expr.name` on something that is not a plain keypath (e.g. a call)."""

    expr: Expr
    index: Expr
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Array:
    items: tuple[Expr, ...]
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Template:
    """Backtick string with `{expr}` interpolation; parts are str or Expr."""

    parts: tuple[str | Expr, ...]
    text: str
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class TimestampOf:
    """`@'2024-01-01T00:00:00Z'`, `@123`, `@(expr)`: a timestamp literal/expression."""

    expr: Expr
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Case:
    kind: str  # "case" | "case_contains" | "case_equals" | "case_greaterthan" | "case_lessthan"
    subject: Expr | None
    clauses: tuple[tuple[Expr, Expr], ...]
    default: Expr | None
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Unary:
    op: str  # "-" | "!" | "~"
    operand: Expr
    pos: Pos = field(compare=False)


@dataclass(slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    pos: Pos = field(compare=False)


Expr = Lit | Path | Call | Unary | Binary | Cast | Index | Array | Template | TimestampOf | Case


@dataclass(slots=True)
class Named:
    expr: Expr
    alias: Path | None


# ------------------------------------------------------------------- commands


@dataclass(slots=True)
class SourceParam:
    """`teamId='58942'` in `source logs(teamId='58942')`."""

    name: str
    value: Lit  # a string or a number
    pos: Pos


@dataclass(slots=True)
class Source:
    name: str
    pos: Pos
    name_pos: Pos
    range_kind: str | None = None  # "last" | "between" | "timeshifted" | "around"
    range_args: tuple[Expr | None, ...] = ()
    params: tuple[SourceParam, ...] = ()


@dataclass(slots=True)
class Filter:
    expr: Expr
    pos: Pos


@dataclass(slots=True)
class Block:
    expr: Expr
    pos: Pos


@dataclass(slots=True)
class GroupBy:
    keys: tuple[Named, ...]
    aggs: tuple[Named, ...]
    pos: Pos
    kw: str = "aggregate"


@dataclass(slots=True)
class Aggregate:
    aggs: tuple[Named, ...]
    pos: Pos


@dataclass(slots=True)
class Count:
    alias: Path | None
    pos: Pos


@dataclass(slots=True)
class CountBy:
    expr: Expr
    alias: Path | None
    pos: Pos
    key_alias: Path | None = None  # `countby expr as name into count_name`


@dataclass(slots=True)
class OrderBy:
    items: tuple[tuple[Expr, bool], ...]  # (expr, descending)
    pos: Pos


@dataclass(slots=True)
class Limit:
    n: float
    text: str
    pos: Pos
    n_pos: Pos


@dataclass(slots=True)
class Choose:
    items: tuple[Named, ...]
    pos: Pos


@dataclass(slots=True)
class Create:
    target: Path
    expr: Expr
    pos: Pos


@dataclass(slots=True)
class Remove:
    targets: tuple[Path, ...]
    pos: Pos


@dataclass(slots=True)
class Distinct:
    exprs: tuple[Expr, ...]
    pos: Pos


@dataclass(slots=True)
class Top:
    n: float
    text: str
    items: tuple[Named, ...]
    by: Named
    bottom: bool
    pos: Pos
    n_pos: Pos


@dataclass(slots=True)
class DedupeBy:
    exprs: tuple[Expr, ...]
    keep: float  # `keep` is optional in DataPrime: 1 when omitted
    keep_text: str | None
    pos: Pos
    keep_pos: Pos


@dataclass(slots=True)
class Generic:
    """Any other documented command (extract, join, redact...), kept as its printed parts.

    `parts` mixes keyword strings and nodes (Expr, Named, Query) in source order, so the
    printer can round-trip it and the executor can name it when it does not run it.
    """

    name: str  # canonical command name
    parts: tuple[object, ...]
    pos: Pos


Command = (
    Source
    | Filter
    | Block
    | GroupBy
    | Aggregate
    | Count
    | CountBy
    | OrderBy
    | Limit
    | Choose
    | Create
    | Remove
    | Distinct
    | Top
    | DedupeBy
    | Generic
)


@dataclass(slots=True)
class Query:
    commands: tuple[Command, ...]
