"""Typed AST for the DataPrime subset.

Why our own AST instead of lark trees: the validator, the printer and the executor
all walk the query; plain frozen dataclasses are faster to walk than lark trees
and decouple the rest of the package from lark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Lit:
    value: object  # str | float | int | bool | None ; durations are int nanoseconds
    kind: str  # "string" | "number" | "duration" | "bool" | "null"
    text: str  # source text, used by the printer to round-trip literals verbatim
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Path:
    scope: str  # "d" | "l" | "m"
    parts: tuple[str, ...]
    bare: bool  # written without `$d.` (e.g. `status_code`)
    pos: Pos = field(compare=False)

    @property
    def key(self) -> str:
        """Canonical storage key used by the executor's flat records."""
        return "$" + self.scope + "".join("." + p for p in self.parts)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    method: bool  # written as `recv.name(...)`; args[0] is the receiver
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "!" | "~"
    operand: Expr
    pos: Pos = field(compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    pos: Pos = field(compare=False)


Expr = Lit | Path | Call | Unary | Binary


@dataclass(frozen=True, slots=True)
class Named:
    expr: Expr
    alias: Path | None


# ------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    pos: Pos
    name_pos: Pos


@dataclass(frozen=True, slots=True)
class Filter:
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Block:
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class GroupBy:
    keys: tuple[Named, ...]
    aggs: tuple[Named, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Aggregate:
    aggs: tuple[Named, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Count:
    alias: Path | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class CountBy:
    expr: Expr
    alias: Path | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class OrderBy:
    items: tuple[tuple[Expr, bool], ...]  # (expr, descending)
    pos: Pos


@dataclass(frozen=True, slots=True)
class Limit:
    n: float
    text: str
    pos: Pos
    n_pos: Pos


@dataclass(frozen=True, slots=True)
class Choose:
    items: tuple[Named, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Create:
    target: Path
    expr: Expr
    pos: Pos


@dataclass(frozen=True, slots=True)
class Remove:
    targets: tuple[Path, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Distinct:
    exprs: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Top:
    n: float
    text: str
    items: tuple[Named, ...]
    by: Named
    bottom: bool
    pos: Pos
    n_pos: Pos


@dataclass(frozen=True, slots=True)
class DedupeBy:
    exprs: tuple[Expr, ...]
    keep: float
    keep_text: str
    pos: Pos
    keep_pos: Pos


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
)


@dataclass(frozen=True, slots=True)
class Query:
    commands: tuple[Command, ...]
