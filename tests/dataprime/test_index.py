"""The first-filter index (stack/dataprime/index.py) answers exactly what the row-by-row scan
answers: every query below runs twice, with and without it, and the results must match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.dataprime import executor, generate
from stack.dataprime.errors import QueryError
from stack.dataprime.index import Term, rows_matching

CORPUS = yaml.safe_load((Path(__file__).parent / "corpus.yaml").read_text(encoding="utf-8"))
QUESTIONS = Path(__file__).parents[2] / "scenarios" / "questions.txt"

EDGES = [
    # ranges and equalities the index answers
    "source spans | filter $m.timestamp > now() - 1h | filter $l.serviceName == 'checkout'",
    "source spans | filter $m.timestamp >= roundTime(now(), 1d) - 1d && "
    "$m.timestamp < roundTime(now(), 1d) | count",
    "source spans | filter $m.duration >= 1000 && $m.duration <= 5000 | limit 500",
    "source spans | filter $m.duration > 2s | limit 500",
    "source spans | filter $m.duration < 0 | count",
    "source logs | filter $l.subsystemname == 'no-such-subsystem' | count",
    "source logs | filter $d.no_such_field == 'x' | count",
    "source logs | filter $d.no_such_field > 5 | count",
    # the same shapes an index must NOT answer: the scan's loose typing decides
    "source spans | filter $d.tags['http.response.status_code'] == '500' | count",
    "source spans | filter $d.tags['http.response.status_code'] >= '500' | count",
    "source spans | filter $l.serviceName > 'm' | count",
    "source spans | filter $l.serviceName == 5 | count",
    "source logs | filter $m.severity >= ERROR | count",
    "source logs | filter $m.severity == 'error' | count",
    "source logs last 1h | filter $l.subsystemname == 'auth' | count",
    "source spans | filter $l.serviceName == 'cart' || $l.serviceName == 'auth' | count",
    "source spans | filter $l.serviceName != 'cart' | count",
    "source spans | filter $l.serviceName == 'cart' | groupby $l.operationName aggregate count()",
]


def _generated() -> list[str]:
    questions = [q for q in QUESTIONS.read_text().splitlines() if q.strip()]
    return list(dict.fromkeys(generate(q).query for q in questions))


def _queries() -> list[str]:
    corpus = [e["query"] for e in CORPUS["queries"]]
    return list(dict.fromkeys([*EDGES, *_generated(), *corpus]))


def _run(query: str) -> Any:
    try:
        result = executor.execute(query, preview=10_000).to_dict()
    except QueryError as exc:  # NotExecuted included: the same refusal either way
        return ("refused", type(exc).__name__, str(exc))
    result.pop("elapsed_ms")
    return result


def test_indexed_and_scanned_answers_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    queries = _queries()
    indexed = {q: _run(q) for q in queries}
    generated = _generated()
    used = sum(1 for q in generated if executor.compile_query(q).first is not None)
    monkeypatch.setattr(executor, "rows_matching", lambda source, term: None)
    for q in queries:
        assert _run(q) == indexed[q], q
    # the comparison means something only if the index answered most of the assistant's queries
    assert used >= len(generated) * 2 // 3, f"the index answered {used} of {len(generated)}"


def test_index_refuses_what_the_scan_types_loosely() -> None:
    # status codes are numbers: a string equality would compare loosely ('500' == 500)
    status = "$d.tags['http.response.status_code']"
    assert rows_matching("spans", Term("==", status, "500")) is None
    # service names are strings: a numeric range over them is not an index's question
    assert rows_matching("spans", Term(">", "$l.serviceName", 3)) is None
    checkout = rows_matching("spans", Term("==", "$l.serviceName", "checkout"))
    assert checkout and all(r["$l.serviceName"] == "checkout" for r in checkout)
    plan = executor.compile_query("source logs | filter $m.severity >= ERROR | count")
    assert plan.first is None  # severities compare by rank, not as strings


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_range_boundaries_match_the_scan(op: str) -> None:
    """At a value some rows hold exactly, `>` and `>=` (and `<`, `<=`) must differ as the
    scan's do."""
    from stack.dataprime import dataset

    rows = dataset.rows_for("spans")
    at = sorted(r["$m.duration"] for r in rows)[len(rows) // 2]
    holders = sum(1 for r in rows if r["$m.duration"] == at)
    assert holders >= 1
    scanned = executor.execute(f"source spans | filter $m.duration {op} {at} | count")
    plan = executor.compile_query(f"source spans | filter $m.duration {op} {at} | count")
    assert plan.first == Term(op, "$m.duration", at)
    compare = {">": at.__lt__, ">=": at.__le__, "<": at.__gt__, "<=": at.__ge__}[op]
    expected = [r for r in rows if compare(r["$m.duration"])]
    assert rows_matching("spans", plan.first) == expected
    assert scanned.rows[0]["_count"] == len(expected)
