"""A fake Coralogix for the lab checks: it *evaluates* the queries it is sent over a world.

The DataPrime query API (`POST /api/v1/dataprime/query`, NDJSON answer with `userData` as a
JSON string) and the Metrics API (`GET /metrics/api/v1/query_range`, Prometheus JSON) are
answered from the world's spans and host metrics, so a check that ignores the data, or reads
another attendee's, gets caught. The evaluator covers the commands the lab specs use
(filter, explode … into, groupby … aggregate, aggregate, orderby, limit, create) with
DataPrime's semantics for those: `null`-tolerant comparisons, `$d.tags[...]` keypaths, `:number`
casts, `startsWith`. It is a test double, not a second DataPrime implementation.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from stack.common.stats import percentile

Row = dict[str, Any]


# ---- expressions ---------------------------------------------------------------------------
_KEYPATH = re.compile(r"\$([dlm])((?:\.[A-Za-z_][A-Za-z0-9_]*|\['[^']*'\])+)")


def _path_parts(tail: str) -> list[str]:
    return [a or b for a, b in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\['([^']*)'\]", tail)]


def _translate(expr: str) -> str:
    """DataPrime expression → Python expression over helpers P/NUM/STARTS/IF."""
    out, i = [], 0
    while i < len(expr):
        ch = expr[i]
        if ch == "'":
            j = expr.index("'", i + 1)
            out.append(repr(expr[i + 1 : j]))
            i = j + 1
            continue
        m = _KEYPATH.match(expr, i)
        if m:
            parts, end = _path_parts(m.group(2)), m.end()
            if parts[-1] == "startsWith" and expr.startswith("(", end):
                parts, end = parts[:-1], end - len(".startsWith")
            code = f"P({m.group(1)!r}, {parts!r})"
            i = end
            if expr.startswith(":number", i):
                code, i = f"NUM({code})", i + len(":number")
            if expr.startswith(".startsWith(", i):
                out.append(f"STARTS({code}, ")
                i += len(".startsWith(")
                continue
            out.append(code)
            continue
        for dp, py in (("&&", " and "), ("||", " or ")):
            if expr.startswith(dp, i):
                out.append(py)
                i += len(dp)
                break
        else:
            word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expr[i:])
            if word:
                w = word.group(0)
                out.append({"null": "None", "true": "True", "false": "False", "if": "IF"}.get(w, w))
                i += len(w)
            else:
                out.append(ch)
                i += 1
    return "".join(out)


def _dig(row: Row, root: str, parts: list[str]) -> Any:
    cur: Any = row.get("$" + root)
    for p in parts:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


class _Scope(dict):
    def __init__(self, row: Row) -> None:
        super().__init__()
        self.row = row

    def __missing__(self, key: str) -> Any:
        if key in self.row:  # a column an earlier groupby/aggregate/create named
            return self.row[key]
        raise KeyError(key)  # then the helpers (P, NUM, …) from the globals


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def compile_expr(expr: str) -> Callable[[Row], Any]:
    code = compile(_translate(expr.strip()), "<dataprime>", "eval")

    def run(row: Row) -> Any:
        env = {
            "P": lambda root, parts: _dig(row, root, parts),
            "NUM": _num,
            "STARTS": lambda v, p: isinstance(v, str) and v.startswith(p),
            "IF": lambda c, a, b=None: a if c else b,
            "__builtins__": {},
        }
        try:
            return eval(code, env, _Scope(row))
        except TypeError:
            return None  # comparing null with a number: DataPrime yields null (falsy)

    return run


# ---- commands ------------------------------------------------------------------------------
def split_top(text: str, sep: str) -> list[str]:
    parts, depth, quote, cur, i = [], 0, False, [], 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth -= 1
        lone = sep != "|" or (text[i + 1 : i + 2] != "|" and text[i - 1 : i] != "|")
        if not quote and depth == 0 and text.startswith(sep, i) and lone:
            parts.append("".join(cur))
            cur, i = [], i + len(sep)
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _aggregator(text: str) -> tuple[str, Callable[[list[Row]], Any]]:
    m = re.match(r"^(\w+)\((.*)\)\s*(?:as\s+(\w+))?$", text.strip(), re.S)
    if not m:
        raise ValueError(f"unsupported aggregation {text!r}")
    fn, args, alias = m.group(1), split_top(m.group(2), ","), m.group(3) or m.group(1)
    if fn == "count":
        return alias, len
    if fn == "percentile":
        q, f = float(args[0]), compile_expr(args[1])
        return alias, lambda rows: percentile([v for r in rows if (v := _num(f(r))) is not None], q)
    f = compile_expr(args[0])
    if fn == "distinct_count":
        return alias, lambda rows: len({f(r) for r in rows if f(r) is not None})
    ops = {"min": min, "max": max, "sum": sum}
    if fn in ops:
        op = ops[fn]
        return (
            alias,
            lambda rows: (
                op(vals) if (vals := [v for r in rows if (v := _num(f(r))) is not None]) else None
            ),
        )
    raise ValueError(f"unsupported aggregation {fn!r}")


def _key_name(text: str) -> tuple[str, Callable[[Row], Any]]:
    m = re.match(r"^(.*?)\s+as\s+(\w+)$", text.strip(), re.S)
    expr, alias = (m.group(1), m.group(2)) if m else (text, None)
    if alias is None:
        km = _KEYPATH.fullmatch(expr.strip())
        alias = _path_parts(km.group(2))[-1] if km else expr.strip()
    return alias, compile_expr(expr)


def run_query(query: str, rows: list[Row]) -> list[Row]:
    stages = split_top(query, "|")
    if not stages or not stages[0].startswith("source "):
        raise ValueError("a query starts with `source`")
    for stage in stages[1:]:
        cmd, _, rest = stage.partition(" ")
        if cmd == "filter":
            pred = compile_expr(rest)
            rows = [r for r in rows if pred(r)]
        elif cmd == "explode":
            m = re.match(r"^\$d\.(\w+)\s+into\s+\$d\.(\w+)$", rest.strip())
            if not m:
                raise ValueError(f"unsupported explode {rest!r}")
            src, dst = m.groups()
            out = []
            for r in rows:
                for item in (r.get("$d") or {}).get(src) or []:
                    out.append({**r, "$d": {**r["$d"], dst: item}})
            rows = out
        elif cmd == "groupby":
            keys_text, _, aggs_text = rest.partition(" aggregate ")
            keys = [_key_name(k) for k in split_top(keys_text, ",")]
            aggs = [_aggregator(a) for a in split_top(aggs_text, ",")]
            groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
            for r in rows:
                groups[tuple(f(r) for _n, f in keys)].append(r)
            rows = [
                {
                    **{n: k for (n, _f), k in zip(keys, key, strict=True)},
                    **{n: f(g) for n, f in aggs},
                }
                for key, g in groups.items()
            ]
        elif cmd == "aggregate":
            aggs = [_aggregator(a) for a in split_top(rest, ",")]
            rows = [{n: f(rows) for n, f in aggs}]
        elif cmd == "orderby":
            m = re.match(r"^(.*?)\s*(asc|desc)?$", rest.strip())
            assert m
            f, desc = compile_expr(m.group(1)), m.group(2) == "desc"
            present = [r for r in rows if f(r) is not None]
            rows = sorted(present, key=f, reverse=desc) + [r for r in rows if f(r) is None]
        elif cmd == "limit":
            rows = rows[: int(rest)]
        elif cmd == "create":
            m = re.match(r"^(\w+)\s+from\s+(.*)$", rest.strip(), re.S)
            assert m
            f = compile_expr(m.group(2))
            rows = [{**r, m.group(1): f(r)} for r in rows]
        else:
            raise ValueError(f"the fake does not know `{cmd}`")
    return rows


# ---- PromQL: just enough for the host-metric check -----------------------------------------
def run_promql(
    query: str, series: dict[str, list[tuple[float, float]]]
) -> list[tuple[float, float]]:
    """``series`` maps a Prometheus metric name to its (ts, value) samples already shaped as
    the query asks (the world stores rates for counters); any metric named in the query."""
    for name, samples in series.items():
        if re.search(rf"\b{re.escape(name)}\b", query):
            return samples
    return []


# ---- the HTTP fake -------------------------------------------------------------------------
class FakeCoralogix:
    def __init__(self, key: str = "cxtp_FAKEKEY0000") -> None:
        self.key = key
        self.spans: list[Row] = []
        self.metrics: dict[str, list[tuple[float, float]]] = {}
        self.queries: list[str] = []
        handler = _handler(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def dataprime(self, body: dict[str, Any]) -> list[Row]:
        meta = body.get("metadata", {})
        start, end = _ns(meta.get("startDate")), _ns(meta.get("endDate"))
        rows = [
            r
            for r in self.spans
            if (start is None or r["$m"]["timestamp"] >= start)
            and (end is None or r["$m"]["timestamp"] < end)
        ]
        return run_query(body["query"], rows)


def _ns(iso: str | None) -> int | None:
    if not iso:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1e9)


def _handler(fake: FakeCoralogix) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def _auth(self) -> bool:
            if self.headers.get("authorization") != f"Bearer {fake.key}":
                self._send(403, "application/json", b'{"error": "forbidden"}')
                return False
            return True

        def _send(self, status: int, ctype: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if not self._auth():
                return
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            fake.queries.append(body["query"])
            try:
                rows = fake.dataprime(body)
            except Exception as exc:
                text = json.dumps({"error": {"message": str(exc)}}) + "\n"
                self._send(200, "application/x-ndjson", text.encode())
                return
            lines = [
                {"queryId": {"queryId": f"q-{len(fake.queries)}"}},
                {
                    "result": {
                        "results": [
                            {"metadata": [], "labels": [], "userData": json.dumps(r)} for r in rows
                        ]
                    }
                },
            ]
            text = "\n".join(json.dumps(x) for x in lines) + "\n"
            self._send(200, "application/x-ndjson", text.encode())

        def do_GET(self) -> None:
            if not self._auth():
                return
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            fake.queries.append(q["query"])
            start, end = float(q["start"]), float(q["end"])
            samples = [
                [t, str(v)] for t, v in run_promql(q["query"], fake.metrics) if start <= t < end
            ]
            result = [{"metric": {}, "values": samples}] if samples else []
            data = {"status": "success", "data": {"resultType": "matrix", "result": result}}
            self._send(200, "application/json", json.dumps(data).encode())

        def log_message(self, *_a: Any) -> None:
            pass

    return H
