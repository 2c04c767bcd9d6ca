"""Executor tests: hand-computed expectations over the deterministic synthetic data."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest

from stack.dataprime import QueryError, execute, generate
from stack.dataprime import dataset as ds
from stack.dataprime.executor import percentile

HOUR_NS = 3_600_000_000_000
CORPUS = Path(__file__).resolve().parents[2] / "scenarios" / "questions.txt"


def test_dataset_is_deterministic_and_sized() -> None:
    spans, logs = ds.spans(), ds.logs()
    assert 2500 <= len(spans) <= 3500 and 2500 <= len(logs) <= 3500
    assert {r["$l.serviceName"] for r in spans} == set(ds.SERVICES)
    assert {r["$m.severity"] for r in logs} == set(ds.SEVERITIES)
    assert all(ds.ANCHOR_NS - 24 * HOUR_NS <= r["$m.timestamp"] <= ds.ANCHOR_NS for r in spans)

    # payment is configured slower than cart
    def avg(svc: str) -> float:
        d = [r["$m.duration"] for r in spans if r["$l.serviceName"] == svc]
        return sum(d) / len(d)

    assert avg("payment") > avg("cart")


def test_count_spans_equals_dataset() -> None:
    r = execute("source spans | count")
    assert r.rows == [{"_count": len(ds.spans())}]
    assert r.rows_scanned == len(ds.spans())
    assert r.rows_matched == 1


def test_default_source_is_logs() -> None:
    assert execute("count into n").rows == [{"n": len(ds.logs())}]


def test_groupby_count_sums_to_filtered_total() -> None:
    status = "$d.tags['http.response.status_code']"
    total = execute(f"source spans | filter {status} >= 500 | count into n").rows[0]["n"]
    assert total == sum(1 for r in ds.spans() if r[status] >= 500)
    grouped = execute(
        f"source spans | filter {status} >= 500 | groupby $l.serviceName aggregate count() as n",
        preview=100,
    )
    assert sum(row["n"] for row in grouped.rows) == total
    assert grouped.columns == ["$l.serviceName", "n"]


def test_countby_matches_counter() -> None:
    r = execute("source logs | countby $m.severity into c", preview=10)
    expected = Counter(x["$m.severity"] for x in ds.logs())
    assert {row["$m.severity"]: row["c"] for row in r.rows} == dict(expected)


def test_orderby_desc_sorted_and_limit() -> None:
    r = execute("source spans | orderby $m.duration desc | limit 7", preview=50)
    durations = [row["$m.duration"] for row in r.rows]
    assert len(durations) == 7 == r.rows_matched
    assert durations == sorted(durations, reverse=True)
    assert durations[0] == max(x["$m.duration"] for x in ds.spans())


def test_multi_key_orderby() -> None:
    r = execute(
        "source spans | orderby $l.serviceName, $m.duration desc | limit 3000"
        " | choose $l.serviceName as s, $m.duration as d",
        preview=3000,
    )
    keys = [(row["s"], -row["d"]) for row in r.rows]
    assert keys == sorted(keys)


def test_preview_cuts_rows_but_not_matched() -> None:
    r = execute("source logs | filter $m.severity == 'INFO' | limit 500", preview=5)
    assert len(r.rows) == 5
    assert r.rows_matched == 500


def test_percentile_matches_direct_computation() -> None:
    """An independent oracle: the standard library's inclusive (linear) quantile."""
    durations = [r["$m.duration"] for r in ds.spans() if r["$l.serviceName"] == "payment"]
    expected = statistics.quantiles(durations, n=100, method="inclusive")[94]
    for q in ("percentile(0.95, $m.duration)", "percentile($m.duration, 0.95)"):
        r = execute(f"source spans | filter $l.serviceName == 'payment' | aggregate {q} as p")
        assert r.rows[0]["p"] == pytest.approx(expected)
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 20, 30, 40, 50], 0.95) == pytest.approx(48.0)


def test_aggregations() -> None:
    rows = [r for r in ds.spans() if r["$l.serviceName"] == "cart"]
    d = [r["$m.duration"] for r in rows]
    r = execute(
        "source spans | filter $l.serviceName == 'cart' | aggregate avg($m.duration) as a,"
        " min($m.duration) as lo, max($m.duration) as hi, sum($m.duration) as s,"
        " count_if($d.tags['otel.status_code'] == 'ERROR') as e,"
        " distinct_count($l.operationName) as ops"
    ).rows[0]
    assert r["a"] == pytest.approx(sum(d) / len(d))
    assert (r["lo"], r["hi"], r["s"]) == (min(d), max(d), sum(d))
    assert r["e"] == sum(1 for x in rows if x["$d.tags['otel.status_code']"] == "ERROR")
    assert r["ops"] == len(ds.OPERATIONS["cart"])


def test_free_text_rows_contain_word() -> None:
    r = execute("source logs | filter $d.message ~ 'timeout' | limit 1000", preview=1000)
    assert r.rows_matched > 0
    assert all("timeout" in row["message"].lower() for row in r.rows)
    expected = sum(1 for x in ds.logs() if "timeout" in x["$d.message"].lower())
    assert r.rows_matched == expected
    bare = execute("source logs | filter $d ~~ 'TIMEOUT' | count into n").rows[0]["n"]
    assert bare == expected


def test_string_functions() -> None:
    n = execute("source logs | filter $d.message.startsWith('cache') | count into n").rows[0]["n"]
    assert n == sum(1 for x in ds.logs() if x["$d.message"].startswith("cache"))
    n2 = execute("source logs | filter contains($d.message, 'redis') | count into n").rows[0]["n"]
    assert n2 == sum(1 for x in ds.logs() if "redis" in x["$d.message"])


def test_time_window_uses_anchor() -> None:
    r = execute("source spans | filter $m.timestamp > now() - 15m | count into n")
    expected = sum(1 for x in ds.spans() if x["$m.timestamp"] > ds.ANCHOR_NS - HOUR_NS // 4)
    assert r.rows[0]["n"] == expected > 0


def test_duration_literal_compares_in_microseconds() -> None:
    r = execute("source spans | filter $m.duration > 500ms | count into n")
    assert r.rows[0]["n"] == sum(1 for x in ds.spans() if x["$m.duration"] > 500_000)


def test_choose_create_remove() -> None:
    r = execute(
        "source spans | limit 3 | create ms from $m.duration / 1000"
        " | remove $d.tags, $d.span_id | choose $l.serviceName as svc, ms"
    )
    assert r.columns == ["svc", "ms"]
    r2 = execute("source spans | limit 1 | remove $d.tags")
    assert not any(c.startswith("tags.") for c in r2.columns)


def test_distinct_top_bottom_dedupe_block() -> None:
    assert execute("source spans | distinct $l.serviceName", preview=50).rows_matched == len(
        ds.SERVICES
    )
    top = execute("source spans | top 3 $l.serviceName by count() as n").rows
    counts = Counter(x["$l.serviceName"] for x in ds.spans())
    assert [row["n"] for row in top] == [c for _, c in counts.most_common(3)]
    bottom = execute("source spans | bottom 2 $l.serviceName by count() as n").rows
    assert [row["n"] for row in bottom] == sorted(counts.values())[:2]
    dd = execute("source spans | dedupeby $l.serviceName keep 2", preview=100)
    assert dd.rows_matched == 2 * len(ds.SERVICES)
    blocked = execute("source logs | block $m.severity == 'DEBUG' | count into n").rows[0]["n"]
    assert blocked == sum(1 for x in ds.logs() if x["$m.severity"] != "DEBUG")


def test_roundtime_buckets() -> None:
    r = execute(
        "source spans | groupby roundTime($m.timestamp, 1h) as h aggregate count() as n",
        preview=100,
    )
    assert sum(row["n"] for row in r.rows) == len(ds.spans())
    assert all(row["h"].endswith(":00:00.000Z") for row in r.rows)


def test_result_to_dict_is_jsonable() -> None:
    import json

    d = execute("source logs | limit 2").to_dict()
    json.dumps(d)
    assert {"columns", "rows", "rows_scanned", "rows_matched", "elapsed_ms"} <= set(d)


def test_every_corpus_query_executes() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    questions = [s for line in lines if (s := line.strip()) and not s.startswith("#")]
    for q in questions:
        result = execute(generate(q).query)
        assert len(result.rows) <= 20
        assert result.rows_matched >= len(result.rows)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("source logs | fliter x", "unknown command"),
        ("source spans | filter count() > 1 | limit 1", "aggregation"),
        ("source spans | filter matches($d.x, '(') | limit 1", "invalid regular expression"),
        ("source spans | limit 0", "positive number"),
        ("source spans | filter formatTimestamp($m.timestamp) == 'x' | limit 1", "not execute"),
    ],
)
def test_invalid_or_unsupported_raise_query_error(query: str, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        execute(query)
    assert fragment in info.value.message
    assert info.value.line >= 1 and info.value.column >= 1


@pytest.mark.parametrize(
    "values",
    [
        [3, None, 1.5, 3, -2, None, 7],  # numbers and nulls
        ["b", None, "a", "b", "c"],  # strings and nulls
        [2, "10", None, 1, "a", 2.5, "10"],  # mixed: the tuple key, never a TypeError
        [None, None],
        [],
    ],
)
@pytest.mark.parametrize("desc", [False, True])
def test_stages_read_columns_as_rows_would(values: list[object], desc: bool) -> None:
    """orderby, groupby and dedupeby read a keypath's column in one pass; the order (stable,
    by _sort_key: numbers, then strings; nulls last both ways), the groups (first appearance)
    and the kept rows are those of evaluating the keypath row by row."""
    from stack.dataprime import nodes as n
    from stack.dataprime.executor import (
        _dedupe_stage,
        _group_rows,
        _orderby_stage,
        _sort_key,
        compile_expr,
    )

    path = n.Path("d", ("x",), False, n.Pos(1, 1))
    rows = [{"$d.x": v, "$d.i": i} for i, v in enumerate(values)]

    ordered = _orderby_stage(((path, desc),))(rows)
    present = [r for r in rows if r["$d.x"] is not None]
    present.sort(key=lambda r: _sort_key(r["$d.x"]), reverse=desc)
    assert [r["$d.i"] for r in ordered] == [
        r["$d.i"] for r in present + [r for r in rows if r["$d.x"] is None]
    ]

    groups = _group_rows([compile_expr(path)], rows)
    expected: dict[tuple[object, ...], list[int]] = {}
    for r in rows:
        expected.setdefault((r["$d.x"],), []).append(r["$d.i"])
    assert {k: [r["$d.i"] for r in v] for k, v in groups.items()} == expected
    assert list(groups) == list(expected)

    kept = _dedupe_stage((path,), 1)(rows)
    first: dict[object, int] = {}
    for r in rows:
        first.setdefault(r["$d.x"], r["$d.i"])
    assert [r["$d.i"] for r in kept] == list(first.values())
