"""Everything the kit itself writes is documented DataPrime that the grammar accepts.

- every query the generator writes for the question corpora re-parses and validates, uses
  Coralogix's field names and none of the constructs the reference does not define;
- every DataPrime query in labs/specs parses (with `{attendee}` filled in as the lab runtime
  does), and a broken copy of one is refused — the check can fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stack.dataprime import execute, generate, validate

from .conftest import FIGURES

ROOT = Path(__file__).resolve().parents[2]
QUESTION_FILES = [ROOT / "scenarios" / "questions.txt"]  # labs/runtime/traffic.py reads it too


def _questions() -> list[str]:
    out: list[str] = []
    for f in QUESTION_FILES:
        lines = f.read_text(encoding="utf-8").splitlines()
        out += [q.strip() for q in lines if q.strip() and not q.lstrip().startswith("#")]
    return out


QUESTIONS = _questions()
# Constructs the reference does not define, or field names Coralogix does not store for spans.
FORBIDDEN = {
    "unary ~ (use $d ~~ 'x')": re.compile(r"(?:filter|\(|&&|\|\|)\s*~\s*'"),
    "interval compared with span $m.duration (a number of µs)": re.compile(
        r"\$m\.duration\s*[<>=!]+\s*\d+(?:ns|us|ms|s|m|h|d)\b"
    ),
    "$d.error": re.compile(r"\$d\.error\b"),
    "$d.http.*": re.compile(r"\$d\.http\."),
    "$d.trace_id on spans": re.compile(r"^source spans.*\$d\.trace_id"),
    "distinct then orderby": re.compile(r"\|\s*distinct [^|]*\|\s*orderby"),
    "ago()": re.compile(r"\bago\("),
}


def test_question_corpus_is_loaded() -> None:
    assert len(QUESTIONS) >= 200


def test_every_generated_query_reparses_and_is_documented() -> None:
    failures: list[str] = []
    for q in QUESTIONS:
        query = generate(q).query
        result = validate(query)
        if not result.valid:
            failures.append(f"{q!r} -> {query!r}: {result.errors[0].message}")
            continue
        again = validate(result.normalized or "")
        if not again.valid or again.normalized != result.normalized:
            failures.append(f"{q!r}: normalized form does not re-parse to itself")
        for what, pattern in FORBIDDEN.items():
            if pattern.search(query):
                failures.append(f"{q!r} -> {query!r}: {what}")
    passed = len(QUESTIONS) - len(failures)
    FIGURES["generator"] = f"{passed}/{len(QUESTIONS)} generated queries re-parse"
    assert not failures, "\n".join(failures[:20])


def test_generated_queries_run_locally() -> None:
    for q in QUESTIONS[::7]:
        result = execute(generate(q).query)
        assert result.rows_scanned > 0


def test_forbidden_patterns_would_catch_the_old_generator() -> None:
    old = [
        "source spans | filter ~ 'timeout' | limit 50",
        "source spans | filter $m.duration > 500ms | limit 5",
        "source spans | filter $d.error == true | count",
        "source spans | countby $d.http.status_code",
        "source spans | dedupeby $d.trace_id keep 1",
        "source spans | distinct $l.serviceName | orderby $l.serviceName",
    ]
    for q in old:
        assert any(p.search(q) for p in FORBIDDEN.values()), q


def _spec_queries() -> Iterator[tuple[str, str]]:
    def walk(node: object, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("query", "explore_query") and isinstance(v, str):
                    yield where + "/" + k, v
                else:
                    yield from walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{where}[{i}]")

    for f in sorted((ROOT / "labs" / "specs").glob("*.yaml")):
        yield from walk(yaml.safe_load(f.read_text(encoding="utf-8")), f.name)


SPEC_QUERIES = list(_spec_queries())


def test_lab_specs_hold_dataprime() -> None:
    assert len(SPEC_QUERIES) >= 10
    assert any("$d.tags['workshop.attendee']" in q for _, q in SPEC_QUERIES)


@pytest.mark.parametrize(("where", "query"), SPEC_QUERIES, ids=[w for w, _ in SPEC_QUERIES])
def test_lab_spec_query_parses(where: str, query: str) -> None:
    filled = query.replace("{attendee}", "attendee-1")  # what labs/runtime/lab.py does
    result = validate(filled)
    assert result.valid, (where, result.errors)


def test_lab_spec_check_can_fail() -> None:
    _, query = next((w, q) for w, q in SPEC_QUERIES if "workshop.attendee" in q)
    broken = query.replace("{attendee}", "attendee-1").replace("['workshop.attendee']", "['x'")
    assert not validate(broken).valid
