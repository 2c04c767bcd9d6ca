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
    "~~": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}
_UNARY = 6
_POSTFIX = 7


def path_text(p: n.Path) -> str:
    side = f"{p.side}=>" if p.side else ""
    if p.bare:
        head, *rest = p.parts
        return side + head + "".join(n.part_text(x) for x in rest)
    return side + p.key


def _lit_text(e: n.Lit) -> str:
    return e.text


def expr_text(e: n.Expr, min_prec: int = 0) -> str:
    # Most frequent node types first: this runs for every node of every validated query.
    t = type(e)
    if t is n.Lit:
        return e.text  # type: ignore[union-attr]
    if t is n.Path:
        return path_text(e)  # type: ignore[arg-type]
    if t is n.Binary:
        prec = _PREC[e.op]  # type: ignore[union-attr]
        # comparisons are non-associative; arithmetic/boolean ops are left-associative
        left_min = prec + 1 if prec == 3 else prec
        out = f"{expr_text(e.left, left_min)} {e.op} {expr_text(e.right, prec + 1)}"  # type: ignore[union-attr]
        return f"({out})" if min_prec > prec else out
    if t is n.Call:
        if e.method:  # type: ignore[union-attr]
            recv = e.args[0]  # type: ignore[union-attr]
            # number/duration receivers need parens: `1h.x` would not lex back
            wrap = isinstance(recv, n.Lit) and recv.kind in ("number", "duration")
            recv_txt = f"({recv.text})" if wrap else expr_text(recv, _POSTFIX)  # type: ignore[union-attr]
            return f"{recv_txt}.{e.name}({_args(e, 1)})"  # type: ignore[union-attr, arg-type]
        return f"{e.name}({_args(e, 0)})"  # type: ignore[union-attr, arg-type]
    if t is n.Unary:
        sep = " " if e.op == "~" else ""  # type: ignore[union-attr]
        out = f"{e.op}{sep}{expr_text(e.operand, _UNARY)}"  # type: ignore[union-attr]
        return f"({out})" if min_prec > _UNARY else out
    return _rare_text(e)


def _rare_text(e: n.Expr) -> str:
    if isinstance(e, n.Cast):
        return f"{expr_text(e.expr, _POSTFIX)}:{e.type}"
    if isinstance(e, n.Index):
        return f"{expr_text(e.expr, _POSTFIX)}[{expr_text(e.index)}]"
    if isinstance(e, n.Array):
        return "[" + ", ".join(expr_text(i) for i in e.items) + "]"
    if isinstance(e, n.Template):
        return e.text
    if isinstance(e, n.TimestampOf):
        inner = expr_text(e.expr, _POSTFIX)
        return f"@{inner}" if isinstance(e.expr, n.Lit) else f"@({expr_text(e.expr)})"
    if isinstance(e, n.Case):
        items = [expr_text(e.subject)] if e.subject is not None else []
        items += [f"{expr_text(c)} -> {expr_text(r)}" for c, r in e.clauses]
        if e.default is not None:
            items.append(f"_ -> {expr_text(e.default)}")
        return f"{e.kind} {{ {', '.join(items)} }}"
    raise TypeError(f"unknown expression node {e!r}")  # pragma: no cover


def _args(e: n.Call, start: int) -> str:
    if not e.names:
        return ", ".join([expr_text(a) for a in e.args[start:]])
    names = e.names
    return ", ".join(
        f"{name}={expr_text(a)}" if name else expr_text(a)
        for a, name in zip(e.args[start:], names[start:], strict=True)
    )


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, n.Query):
        return query_text(part)
    if isinstance(part, tuple):
        return _names(part)
    if isinstance(part, n.Named):
        return _named(part)
    return expr_text(part)  # type: ignore[arg-type]


def _generic_text(c: n.Generic) -> str:
    out = ""
    for part in c.parts:
        txt = _part_text(part)
        if not out or txt in (",", ")") or out.endswith("("):
            out += txt
        else:
            out += " " + txt
    return out


def _named(item: n.Named) -> str:
    txt = expr_text(item.expr)
    return f"{txt} as {path_text(item.alias)}" if item.alias else txt


def _names(items: tuple[n.Named, ...]) -> str:
    return ", ".join(_named(i) for i in items)


def command_text(c: n.Command) -> str:
    match c:
        case n.Source():
            name = c.name
            if c.params:
                name += "(" + ", ".join(f"{p.name}={p.value.text}" for p in c.params) + ")"
            if c.range_kind is None:
                return f"source {name}"
            args = [expr_text(a) for a in c.range_args if a is not None]
            if c.range_kind == "between":
                return f"source {name} between {args[0]} and {args[1]}"
            if c.range_kind == "around" and len(args) == 2:
                return f"source {name} around {args[0]} interval {args[1]}"
            return f"source {name} {c.range_kind} {args[0]}"
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
            if c.key_alias:
                out += f" as {path_text(c.key_alias)}"
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
            return f"dedupeby {exprs} keep {c.keep_text}" if c.keep_text else f"dedupeby {exprs}"
        case n.Generic():
            return _generic_text(c)
    raise TypeError(f"unknown command node {c!r}")  # pragma: no cover


def query_text(q: n.Query) -> str:
    return " | ".join(command_text(c) for c in q.commands)
