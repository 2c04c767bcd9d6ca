"""Generator tests: the whole scenarios/questions.txt corpus must yield valid queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.dataprime import INTENTS, generate, normalize_question, validate

CORPUS = Path(__file__).resolve().parents[2] / "scenarios" / "questions.txt"


def _questions() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]


QUESTIONS = _questions()


def test_corpus_size() -> None:
    assert len(QUESTIONS) >= 220
    assert len({normalize_question(q) for q in QUESTIONS}) >= 200


def test_every_corpus_question_generates_a_valid_query() -> None:
    failures = []
    for q in QUESTIONS:
        g = generate(q)
        result = validate(g.query)
        if result.errors:
            failures.append((q, g.query, [e.message for e in result.errors]))
        assert g.intent in INTENTS
        assert 0.0 <= g.confidence <= 1.0
        assert g.explanation and "\n" not in g.explanation
    assert failures == []


def test_corpus_covers_every_intent() -> None:
    seen = {generate(q).intent for q in QUESTIONS}
    assert seen == set(INTENTS)


def test_p95_latency_example() -> None:
    g = generate("p95 latency of checkout in the last hour")
    assert g.intent == "latency_percentile"
    assert "percentile(0.95, $m.duration)" in g.query
    assert "'checkout'" in g.query
    assert "now() - 1h" in g.query
    assert g.confidence >= 0.8


@pytest.mark.parametrize(
    ("question", "intent", "fragments"),
    [
        (
            "errors from checkout in the last hour by status code",
            "error_search",
            [
                "source spans",
                "'checkout'",
                "now() - 1h",
                "groupby $d.tags['http.response.status_code']",
            ],
        ),
        ("top 5 slowest operations", "top_n", ["top 5 $l.operationName by avg($m.duration)"]),
        (
            "top 10 services by errors",
            "top_n",
            ["$d.tags['http.response.status_code'] >= 500", "top 10 $l.serviceName"],
        ),
        ("logs containing 'timeout'", "free_text", ["source logs", "$d.message ~ 'timeout'"]),
        (
            "spans for payment-service POST /charge",
            "service_operation",
            ["$l.serviceName == 'payment'", "$l.operationName == 'POST /charge'"],
        ),
        ("throughput of checkout per minute", "throughput", ["roundTime($m.timestamp, 1m)"]),
        ("requests per service", "count_by", ["countby $l.serviceName"]),
        ("count by status code", "count_by", ["countby $d.tags['http.response.status_code']"]),
        ("10 slowest traces in the last 15 minutes", "slowest_traces", ["now() - 15m", "limit 10"]),
        ("error rate per service today", "error_rate", ["count_if(", "roundTime(now(), 1d)"]),
        (
            "list distinct operations of payment",
            "distinct_values",
            ["groupby $l.operationName as value", "orderby value"],
        ),
        ("errors in the last 7 days", "error_search", ["now() - 7d"]),
        ("errors from cart in the past 2 hours", "error_search", ["now() - 2h", "'cart'"]),
        ("errors yesterday", "error_search", ["roundTime(now(), 1d) - 1d"]),
    ],
)
def test_exact_expectations(question: str, intent: str, fragments: list[str]) -> None:
    g = generate(question)
    assert g.intent == intent, g
    for fragment in fragments:
        assert fragment in g.query, (fragment, g.query)
    assert validate(g.query).valid


def test_fallback_has_lower_confidence() -> None:
    strong = generate("p95 latency of checkout in the last hour")
    weak = generate("hello")
    assert weak.intent == "recent_logs"
    assert weak.confidence < strong.confidence
    assert validate(weak.query).valid


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "?!", None])
def test_empty_question_raises(question: object) -> None:
    with pytest.raises(ValueError, match="question"):
        generate(question)  # type: ignore[arg-type]


def test_normalize_question() -> None:
    assert normalize_question("  Errors   from CHECKOUT?! ") == "errors from checkout"
    assert normalize_question("P95 “latency”, please.") == "p95 'latency' please"
    assert normalize_question("GET /cart for payment-service") == "get /cart for payment-service"
    assert normalize_question("p99.9 latency") == "p99.9 latency"


def test_quotes_and_cases_fold_to_same_query() -> None:
    a = generate('LOGS containing "timeout"')
    b = generate("logs containing 'timeout'")
    assert a.query == b.query


def test_to_dict() -> None:
    d = generate("errors from checkout").to_dict()
    assert set(d) == {"query", "intent", "confidence", "explanation"}
