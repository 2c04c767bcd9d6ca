"""Grammar + validator tests for stack.dataprime (pure, fast)."""

from __future__ import annotations

import pytest

from stack.dataprime import validate

VALID = [
    "source logs",
    "source spans | limit 10",
    "source logs | filter $m.severity == 'ERROR' | limit 20",
    "source logs | f $d.status_code >= 500 | limit 5",
    "source logs | where $d.status_code != 200 | limit 5",
    'source logs | filter $d.message ~ "connection refused" | limit 5',
    "source logs | filter $d ~~ 'timeout' | limit 5",
    "source logs | filter $d.message.contains('timeout') | limit 5",
    "source logs | filter contains($d.message, 'timeout') | limit 5",
    "source logs | filter startsWith($d.message, 'db') || endsWith($d.message, 'ms') | limit 5",
    "source logs | filter $d.message.toLowerCase().contains('tls') | limit 5",
    "source logs | filter matches($d.message, 'time(out|d out)') | limit 5",
    "source logs | filter length($d.message) > 40 | limit 5",
    "source logs | filter toUpperCase($m.severity) == 'ERROR' | limit 5",
    "source spans | filter $m.timestamp > now() - 1h | limit 5",
    "source spans | filter $m.timestamp > now() - 15m | limit 5",
    "source spans | filter $m.timestamp >= roundTime(now(), 1d) - 1d | limit 5",
    "source spans | filter $m.duration > 500ms | limit 5",
    "source spans | filter $m.duration > 1h30m | limit 5",
    "source spans | filter $d.error == true && !($d.http.status_code < 500) | limit 5",
    "source spans | filter $d.error != false | limit 5",
    "source spans | filter $d.missing == null | limit 5",
    "source spans | filter ($d.a + 2) * 3 % 4 - 1 / 2 > 0 | limit 5",
    "source spans | filter -$d.a < 0 | limit 5",
    "source spans | filter status_code == 500 | limit 5",
    "source spans | filter http.status_code == 500 | limit 5",
    "source spans | filter $data.http.status_code == 500 | limit 5",
    "source spans | filter $labels.serviceName == 'cart' | limit 5",
    "source spans | filter $metadata.duration > 100 | limit 5",
    "source spans | filter $d.a == 'it\\'s' | limit 5",
    "source spans | count",
    "source spans | count into total",
    "source spans | countby $l.serviceName",
    "source spans | countby $l.serviceName into n | orderby n desc",
    "source spans | groupby $l.serviceName aggregate count()",
    "source spans | groupby $l.serviceName as svc aggregate count() as n, avg($m.duration) as a",
    "source spans | groupby $l.serviceName agg max($m.duration)",
    "source spans | groupby $l.serviceName, $l.operationName aggregate sum($m.duration)",
    "source spans | groupby $l.serviceName",
    "source spans | groupby roundTime($m.timestamp, 1m) as t aggregate count() | orderby t",
    "source spans | aggregate percentile(0.95, $m.duration) as p95",
    "source spans | aggregate percentile($m.duration, 0.99) as p99",
    "source spans | aggregate count_if($d.error == true) as e, count() as n",
    "source spans | aggregate distinct_count($d.trace_id) as traces",
    "source spans | aggregate min($m.duration), max($m.duration)",
    "source spans | aggregate count_if($d.error) / count() as rate",
    "source spans | orderby $m.duration desc | limit 3",
    "source spans | sortby $l.serviceName asc, $m.duration desc | limit 3",
    "source spans | choose $l.serviceName, $m.duration as us | limit 3",
    "source spans | select $l.serviceName as s | limit 3",
    "source spans | create ms from $m.duration / 1000 | limit 3",
    "source spans | add $d.ms from $m.duration / 1000 | limit 3",
    "source spans | remove $d.tags, $d.span_id | limit 3",
    "source spans | distinct $l.serviceName",
    "source spans | distinct $l.serviceName, $l.operationName",
    "source spans | top 5 $l.operationName by avg($m.duration)",
    "source spans | top 5 $l.operationName as op by count() as n",
    "source spans | bottom 3 $l.serviceName by count()",
    "source spans | top 3 $d.trace_id by $m.duration",
    "source spans | dedupeby $d.trace_id keep 1 | limit 5",
    "source spans | dedupeby $l.serviceName, $l.operationName keep 2 | limit 5",
    "source logs | block $m.severity == 'DEBUG' | limit 5",
    "source logs\n| filter $m.severity == 'ERROR'\n| limit 5",
    "source logs // trailing comment\n| limit 5",
    "source spans | filter $d.x == 1.5e3 | limit 1",
    "source spans | filter $d.a == 'x' # a comment, as the reference allows\n| limit 1",
]

# (query, line, column, message fragment)
INVALID = [
    ("source logs | ", 1, 14, "expected a command after `|`"),
    ("source logs | fliter $d.x == 1", 1, 15, "unknown command `fliter`"),
    ("source logs | fliter $d.x == 1", 1, 15, "did you mean `filter`?"),
    ("source logs | filter $d.message ~ 'timeout", 1, 35, "unterminated string"),
    ('source logs | filter $d.message ~ "timeout', 1, 35, "unterminated string"),
    ("source logs | filter ($d.a == 1))", 1, 33, "unexpected `)`"),
    ("source logs | limit", 1, 20, "`limit` needs a positive number"),
    ("source logs | limit abc", 1, 21, "`limit` needs a positive number"),
    ("source logs | limit 0", 1, 21, "`limit` needs a positive number"),
    ("source logs | limit -3", 1, 21, "`limit` needs a positive number"),
    ("source logs | limit 2.5", 1, 21, "`limit` needs a positive number"),
    ("source logs | filter", 1, 21, "expected an expression"),
    ("source logs | filter $d.a ==", 1, 29, "expected an expression"),
    ("source logs | filter $d.a = 1", 1, 27, "use `==`"),
    ("source logs | filter $x.a == 1", 1, 22, "unknown keypath prefix `$x`"),
    ("source lgs | limit 5", 1, 8, "unknown source `lgs`"),
    ("source spans | groupby $l.serviceName agregate count()", 1, 39, "did you mean `aggregate`"),
    ("source spans | orderby $m.duration dsc", 1, 36, "did you mean `desc`"),
    ("source spans | filter cotains($d.x, 'a') | limit 5", 1, 23, "unknown function `cotains`"),
    ("source spans | filter count() > 3 | limit 5", 1, 23, "aggregation `count()`"),
    ("source spans | aggregate percentile(1.5, $m.duration)", 1, 37, "between 0 and 1"),
    ("source spans | aggregate avg($m.duration), $l.serviceName", 1, 44, "not an aggregation"),
    ("source spans | filter $d.a == 1 $d.b", 1, 33, "unexpected `$d.b`"),
    ("source logs\n| filter $d.a == 1\n| limt 10", 3, 3, "unknown command `limt`"),
    ("source logs\n| filter ($d.a == 1\n    && $d.b == 2", 3, 17, "missing `)`"),
    ("source spans\n| groupby $l.serviceName\n  aggregate count() as c\n| limit 0", 4, 9, "limit"),
    ("source logs |\n| limit 5", 2, 1, "expected a command after `|`"),
    ("", 1, 1, "empty query"),
    ("   ", 1, 1, "empty query"),
    ("| filter $d.a == 1", 1, 1, "expected a command"),
    ("source spans | top x $l.serviceName by count()", 1, 20, "`top` needs a positive number"),
    ("source spans | dedupeby $d.trace_id keep 0", 1, 42, "`keep` needs a positive number"),
    ("source spans | choose $d.a as", 1, 30, "expected a field name"),
    ("source spans | filter $d.a & $d.b", 1, 28, "use `&&`"),
    ("source spans | groupby roundTime($m.timestamp, 5) aggregate count()", 1, 48, "duration"),
    ("source spans | filter contains($d.a) | limit 1", 1, 23, "takes 2 arguments, got 1"),
    ("source logs | source spans | limit 1", 1, 15, "only one `source`"),
    ("source logs | filter ~ 'timeout' | limit 5", 1, 22, "`$d ~~ 'text'`"),
    ("source spans | filter (1 + ) > 2", 1, 28, "unexpected `)`"),
    ("source spans\n  | filter $d.a ==\n  | limit 5", 3, 3, "unexpected `|`"),
    ("source spans | groupby $l.serviceName aggregate $d.x.nope(1)", 1, 54, "unknown function"),
]


@pytest.mark.parametrize("query", VALID)
def test_valid_queries_accepted(query: str) -> None:
    result = validate(query)
    assert result.valid, result.errors
    assert result.errors == []
    assert result.normalized is not None


def test_enough_distinct_cases() -> None:
    assert len(set(VALID)) >= 60
    assert len({q for q, *_ in INVALID}) >= 30


@pytest.mark.parametrize(("query", "line", "column", "fragment"), INVALID)
def test_invalid_queries_positioned(query: str, line: int, column: int, fragment: str) -> None:
    result = validate(query)
    assert not result.valid
    assert result.normalized is None
    first = result.errors[0]
    assert (first.line, first.column) == (line, column), first
    assert fragment in first.message
    assert first.severity == "error"


@pytest.mark.parametrize("query", [q for q, *_ in INVALID])
def test_messages_never_leak_lark_internals(query: str) -> None:
    for issue in validate(query).errors:
        assert "__ANON" not in issue.message
        for internal in ("IDENT", "KEYPATH", "RPAR", "LPAR", "$END", "Token(", "PIPE"):
            assert internal not in issue.message


@pytest.mark.parametrize("query", VALID)
def test_normalized_is_idempotent(query: str) -> None:
    once = validate(query).normalized
    assert once is not None
    again = validate(once)
    assert again.valid and again.normalized == once


def test_normalization_canonicalizes_aliases() -> None:
    q = "source spans|where  $d.a==1|sortby $m.duration desc|select $d.a|add b from 1|limit 3"
    assert validate(q).normalized == (
        "source spans | filter $d.a == 1 | orderby $m.duration desc | choose $d.a"
        " | create b from 1 | limit 3"
    )
    assert validate("f a == 1 | limit 1").normalized == "filter a == 1 | limit 1"
    assert validate("source spans | groupby x agg count()").normalized == (
        "source spans | groupby x aggregate count()"
    )
    assert validate("source logs | filter ((a == 1)) && (b || c) | limit 1").normalized == (
        "source logs | filter a == 1 && (b || c) | limit 1"
    )


def test_warning_no_source() -> None:
    r = validate("filter $d.a == 1 | limit 5")
    assert r.valid
    assert [w.message for w in r.warnings] == ["no `source`: the query runs over logs by default"]
    assert (r.warnings[0].line, r.warnings[0].column) == (1, 1)
    assert r.warnings[0].severity == "warning"


def test_warning_raw_search_without_limit() -> None:
    r = validate("source logs | filter $d.a == 1")
    assert r.valid
    assert len(r.warnings) == 1 and "no `limit`" in r.warnings[0].message
    for shaped in (
        "source logs | count",
        "source logs | countby $m.severity",
        "source logs | limit 1",
    ):
        assert validate(shaped).warnings == []


def test_warning_source_not_first() -> None:
    r = validate("filter $d.a == 1 | source spans | limit 5")
    assert r.valid
    msgs = [w.message for w in r.warnings]
    assert "`source` should be the first command" in msgs
    w = next(w for w in r.warnings if "first" in w.message)
    assert (w.line, w.column) == (1, 20)


def test_to_dict_shape() -> None:
    d = validate("source logs | fliter x").to_dict()
    assert set(d) == {"valid", "errors", "warnings", "normalized"}
    assert d["valid"] is False
    assert set(d["errors"][0]) == {"message", "line", "column"}


@pytest.mark.parametrize("bad", [None, 42, b"source logs", "\x00", "(" * 200, "'" * 3])
def test_validate_never_raises(bad: object) -> None:
    result = validate(bad)  # type: ignore[arg-type]
    assert result.valid is False
    assert result.errors
