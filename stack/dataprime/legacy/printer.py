"""Canonical pretty-printer: the `normalized` form returned by the validator.

Parentheses are re-derived from operator precedence, so printing the parse of a
printed query yields the same text (idempotent normalisation).
"""

from __future__ import annotations

from . import nodes as n

_PREC = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "~": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
_UNARY = 6
_POSTFIX = 7


def path_text(p: n.Path) -> str:
    if p.bare:
        return ".".join(p.parts)
    return p.key


def expr_text(e: n.Expr, min_prec: int = 0) -> str:
    if isinstance(e, n.Lit):
        return e.text
    if isinstance(e, n.Path):
        return path_text(e)
    if isinstance(e, n.Call):
        if e.method:
            recv = e.args[0]
            # number/duration receivers need parens: `1h.x` would not lex back
            wrap = isinstance(recv, n.Lit) and recv.kind in ("number", "duration")
            recv_txt = f"({recv.text})" if wrap else expr_text(recv, _POSTFIX)
            args = ", ".join(expr_text(a) for a in e.args[1:])
            return f"{recv_txt}.{e.name}({args})"
        return f"{e.name}({', '.join(expr_text(a) for a in e.args)})"
    if isinstance(e, n.Unary):
        sep = " " if e.op == "~" else ""
        out = f"{e.op}{sep}{expr_text(e.operand, _UNARY)}"
        return f"({out})" if min_prec > _UNARY else out
    prec = _PREC[e.op]
    # comparisons are non-associative; arithmetic/boolean ops are left-associative
    left_min = prec + 1 if prec == 3 else prec
    out = f"{expr_text(e.left, left_min)} {e.op} {expr_text(e.right, prec + 1)}"
    return f"({out})" if min_prec > prec else out


def _named(item: n.Named) -> str:
    txt = expr_text(item.expr)
    return f"{txt} as {path_text(item.alias)}" if item.alias else txt


def _names(items: tuple[n.Named, ...]) -> str:
    return ", ".join(_named(i) for i in items)


def command_text(c: n.Command) -> str:
    match c:
        case n.Source():
            return f"source {c.name}"
        case n.Filter():
            return f"filter {expr_text(c.expr)}"
        case n.Block():
            return f"block {expr_text(c.expr)}"
        case n.GroupBy():
            out = f"groupby {_names(c.keys)}"
            return f"{out} aggregate {_names(c.aggs)}" if c.aggs else out
        case n.Aggregate():
            return f"aggregate {_names(c.aggs)}"
        case n.Count():
            return f"count into {path_text(c.alias)}" if c.alias else "count"
        case n.CountBy():
            out = f"countby {expr_text(c.expr)}"
            return f"{out} into {path_text(c.alias)}" if c.alias else out
        case n.OrderBy():
            items = (expr_text(e) + (" desc" if desc else "") for e, desc in c.items)
            return "orderby " + ", ".join(items)
        case n.Limit():
            return f"limit {c.text}"
        case n.Choose():
            return f"choose {_names(c.items)}"
        case n.Create():
            return f"create {path_text(c.target)} from {expr_text(c.expr)}"
        case n.Remove():
            return "remove " + ", ".join(path_text(t) for t in c.targets)
        case n.Distinct():
            return "distinct " + ", ".join(expr_text(e) for e in c.exprs)
        case n.Top():
            kw = "bottom" if c.bottom else "top"
            return f"{kw} {c.text} {_names(c.items)} by {_named(c.by)}"
        case n.DedupeBy():
            exprs = ", ".join(expr_text(e) for e in c.exprs)
            return f"dedupeby {exprs} keep {c.keep_text}"
    raise TypeError(f"unknown command node {c!r}")  # pragma: no cover


def query_text(q: n.Query) -> str:
    return " | ".join(command_text(c) for c in q.commands)
