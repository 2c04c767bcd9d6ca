"""Local execution follows the product's semantics, and says plainly what it does not run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from stack.dataprime import NotExecuted, QueryError, execute, validate
from stack.dataprime import dataset as ds


def _count(query: str) -> int:
    return execute(query + " | count into n").rows[0]["n"]


def test_severity_enum_is_case_insensitive_and_ordered() -> None:
    errors = sum(1 for r in ds.logs() if r["$m.severity"] == "ERROR")
    assert errors > 0
    assert _count("source logs | filter $m.severity == ERROR") == errors
    assert _count("source logs | filter $m.severity == 'Error'") == errors
    assert _count("source logs | filter $m.severity == error") == errors
    at_least_warning = sum(
        1 for r in ds.logs() if r["$m.severity"] in ("WARNING", "ERROR", "CRITICAL")
    )
    assert _count("source logs | filter $m.severity >= WARNING") == at_least_warning
    assert _count("source logs | filter $m.severity in [ERROR, CRITICAL]") == sum(
        1 for r in ds.logs() if r["$m.severity"] in ("ERROR", "CRITICAL")
    )


def test_enum_is_not_read_as_a_data_path() -> None:
    q = validate("source logs | filter $m.severity == ERROR | limit 1").normalized
    assert q == "source logs | filter $m.severity == ERROR | limit 1"
    assert _count("source logs | filter $d.ERROR == null") == len(ds.logs())


def test_span_duration_is_microseconds() -> None:
    slow = sum(1 for r in ds.spans() if r["$m.duration"] > 500_000)
    assert _count("source spans | filter $m.duration > 500000") == slow
    assert _count("source spans | filter $m.duration / 1000 > 500") == slow


def test_double_tilde_is_one_operator() -> None:
    tree = validate("source logs | filter $d ~~ 'timeout' | limit 1")
    assert tree.valid and tree.normalized == "source logs | filter $d ~~ 'timeout' | limit 1"
    n = _count("source logs | filter $d ~~ 'TIMEOUT'")
    assert n == sum(1 for r in ds.logs() if "timeout" in r["$d.message"].lower())


def test_bracket_keys_casts_case_and_source_last() -> None:
    status = "$d.tags['http.response.status_code']"
    expected = sum(1 for r in ds.spans() if r[status] == 503)
    assert _count(f"source spans | filter {status}:string == '503'") == expected
    labelled = execute(
        "source spans | create class from case_greaterthan { "
        f"{status}, 499 -> 'server', 399 -> 'client', _ -> 'ok' }}"
        " | groupby class aggregate count() as n",
        preview=10,
    )
    counts = {r["class"]: r["n"] for r in labelled.rows}
    assert counts["server"] == sum(1 for r in ds.spans() if r[status] >= 500)
    recent = sum(1 for r in ds.spans() if r["$m.timestamp"] >= ds.ANCHOR_NS - 3_600 * 10**9)
    assert _count("source spans last 1h") == recent


@pytest.mark.parametrize(
    ("query", "construct", "column"),
    [
        ("source logs | extract $d.message into x using regexp(e=/(?<n>\\d+)/)", "extract", 15),
        ("source logs | join (source spans) using trace_id into s", "join", 15),
        ("source logs | lucene 'status:500'", "lucene", 15),
        ("source logs | filter formatTimestamp($m.timestamp) != null", "formatTimestamp()", 22),
        ("source system/engine.queries | limit 1", "source system/engine.queries", 8),
        ("source logs between @'2025-01-15T00:00:00Z' and @'now'", "source ... between", 1),
        # the synthetic data set is one team's: another team's dataset is not there to read
        ("source logs(teamId='58942') | limit 5", "source ... teamId", 13),
        ("source logs | union logs(teamId=98361) | limit 5", "union", 15),
    ],
)
def test_valid_but_not_executed_is_a_distinct_answer(
    query: str, construct: str, column: int
) -> None:
    assert validate(query).valid
    with pytest.raises(NotExecuted) as info:
        execute(query)
    exc = info.value
    assert exc.construct == construct and exc.column == column
    assert exc.message == f"valid DataPrime; the local engine does not execute `{construct}`"
    assert exc.to_dict()["kind"] == "not_executed"


def test_syntax_errors_stay_errors_not_not_executed() -> None:
    with pytest.raises(QueryError) as info:
        execute("source logs | extract $d.message into")
    assert not isinstance(info.value, NotExecuted)


def test_processing_service_answers_not_executed_as_a_result(monkeypatch) -> None:
    # for this test only: a process-wide OTEL_SDK_DISABLED silences every later SDK user
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    from stack.services.processing import create_app

    app = create_app()

    async def scenario() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://processing") as c:
            skipped = await c.post("/execute", json={"query": "source logs | lucene 'a:b'"})
            rows = await c.post("/execute", json={"query": "source logs | limit 2"})
            broken = await c.post("/execute", json={"query": "source logs | fliter x"})
        return [skipped, rows, broken]

    skipped, rows, broken = asyncio.run(scenario())
    assert skipped.status_code == 200
    body = skipped.json()
    assert body["kind"] == "not_executed" and body["construct"] == "lucene"
    assert (body["line"], body["column"]) == (1, 15) and body["rows"] == []
    assert rows.status_code == 200 and rows.json()["kind"] == "rows"
    assert len(rows.json()["rows"]) == 2
    assert broken.status_code == 422


def test_text_and_reshaping_commands_run_locally() -> None:
    refused = sum(1 for r in ds.logs() if "connection refused" in r["$d.message"].lower())
    assert _count("source logs | find 'Connection Refused' in $d.message") == refused
    assert _count("source logs | wildfind 'connection refused'") == refused
    moved = execute("source logs | move $d.message to $d.msg | limit 1").rows[0]
    assert "msg" in moved and "message" not in moved
    replaced = execute("source logs | replace $d.status_code with 0 | limit 3").rows
    assert {r["status_code"] for r in replaced} == {0}
    converted = execute("source logs | convert $d.status_code:string | limit 1").rows[0]
    assert isinstance(converted["status_code"], str)
    hourly = execute("source logs | roundtime to 1h into $d.hour | limit 5").rows
    assert all(r["hour"].endswith(":00:00.000Z") for r in hourly)


def test_a_bare_union_dataset_prints_as_the_documented_subquery() -> None:
    # IBM Cloud Logs' reference writes `union logs(teamId=98361)`; Coralogix's writes
    # `union (source logs(teamId='98361'))`: one query, printed the documented way.
    normalized = validate("source logs(teamId=58942) | union logs(teamId=98361) | limit 5")
    assert normalized.normalized == (
        "source logs(teamId=58942) | union (source logs(teamId=98361)) | limit 5"
    )
    assert validate(normalized.normalized).valid
