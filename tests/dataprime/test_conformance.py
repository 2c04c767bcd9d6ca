"""Conformance: real public DataPrime queries parse; invalid ones are refused helpfully.

`corpus.yaml` holds queries gathered from public sources (each with its source):
- `check: full` — reference-doc and public-repository examples: `validate()` must accept them;
- `check: syntax` — the tree-sitter-dataprime test corpus, which uses placeholder names such
  as `func()` and `expr`: the grammar must parse them (semantic checks would flag the
  placeholders, not the syntax);
- `check: expression` — expression examples from the reference (no pipeline around them).

Every rejection is listed in REJECTED with the reason; the test fails if a listed query starts
passing (update the list) or an unlisted one fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stack.dataprime import validate
from stack.dataprime.errors import QueryError
from stack.dataprime.parser import COMMAND_NAMES, parse, parse_expression

from .conftest import FIGURES

HERE = Path(__file__).parent
CORPUS = yaml.safe_load((HERE / "corpus.yaml").read_text(encoding="utf-8"))["queries"]
INVALID = yaml.safe_load((HERE / "invalid.yaml").read_text(encoding="utf-8"))["invalid"]

# query (or, for a multi-line query, a line of it) -> why the kit refuses it
REJECTED: dict[str, str] = {
    "filter $variable.subpath.function": "tree-sitter placeholder `$variable`: the reference "
    "documents only $d/$data, $l/$labels, $m/$metadata (and $p parameters) as keypath roots",
    "c $d.log_data.truncated_message from $d.message.substring(1,50)": "the glossary example "
    "calls `substring`, which the reference's function list does not define (it has `substr`)",
    "redact $d.mysuperkey.user_id matchingn 'root' to 'UNKNOWN_USER'": "typo in the glossary "
    "(`matchingn` for `matching`)",
    "count() into $d.num_rows": "a fragment from the aggregation docs, not a command "
    "(`count into ...` is the command)",
    "source logs": "",  # placeholder, replaced below (the salary_ratio example)
    "source logs | filter $m.severity == 'Error' and $l.subsystemname == 'frontend'": "an LLM "
    "prompt example using `and`; DataPrime's boolean operators are `&&` and `||`",
    "source logs | filter $d.logRecord.body contains 'error' | limit 20": "SQL-like infix "
    "`contains`; DataPrime writes `$d.x.contains('error')` or `$d.x ~ 'error'`",
    "source logs | groupby roundTime($m.timestamp, '1h') as t, $l.applicationname | aggregate "
    "count() as cnt": "`roundTime` takes an interval literal (`1h`), not the string '1h'",
}
del REJECTED["source logs"]
REJECTED_MULTILINE: dict[str, str] = {
    "| groupby department_id aggregate": "the glossary's example 3 is broken as printed (a "
    "missing comma and a stray `)` after the template string)",
    "| extract $d.durationMs as duration:number": "`extract ... as` is not the documented form "
    "(`extract <expr> into <keypath> using <extractor>(...)`)",
}


def _accepted(entry: dict[str, str]) -> tuple[bool, str]:
    q = entry["query"]
    try:
        if entry["check"] == "syntax":
            parse(q)
        elif entry["check"] == "expression":
            parse_expression(q)
        else:
            result = validate(q)
            if not result.valid:
                e = result.errors[0]
                return False, f"{e.message} (line {e.line}, column {e.column})"
    except QueryError as exc:
        return False, str(exc)
    return True, ""


def _listed_reason(q: str) -> str | None:
    if q in REJECTED:
        return REJECTED[q]
    multi = next((r for marker, r in REJECTED.items() if "\n" in q and marker in q), None)
    return multi or next((r for marker, r in REJECTED_MULTILINE.items() if marker in q), None)


def test_corpus_is_big_enough_and_sourced() -> None:
    assert len(CORPUS) >= 250
    assert all(e["source"] and e["query"].strip() for e in CORPUS)
    kinds = {e["kind"] for e in CORPUS}
    assert kinds == {"reference-docs", "grammar-test-corpus", "public-example"}


def test_corpus_pass_ratio_and_listed_rejections() -> None:
    rejected = {}
    for entry in CORPUS:
        ok, why = _accepted(entry)
        if not ok:
            rejected[entry["query"]] = why
    ratio = 1 - len(rejected) / len(CORPUS)
    FIGURES["corpus"] = f"{len(CORPUS) - len(rejected)}/{len(CORPUS)} accepted ({ratio:.1%})"
    unlisted = {q: why for q, why in rejected.items() if _listed_reason(q) is None}
    assert not unlisted, f"rejected but not listed in REJECTED: {unlisted}"
    listed = set(REJECTED) | set(REJECTED_MULTILINE)
    stale = [m for m in listed if not any(m == q or (m in q and "\n" in q) for q in rejected)]
    assert not stale, f"listed as rejected but now accepted: {stale}"
    assert ratio >= 0.95


@pytest.mark.parametrize("entry", INVALID, ids=lambda e: e["query"][:60])
def test_invalid_query_refused_with_position_and_message(entry: dict) -> None:
    result = validate(entry["query"])
    assert not result.valid and result.normalized is None
    first = result.errors[0]
    assert (first.line, first.column, first.message) == (
        entry["line"],
        entry["column"],
        entry["message"],
    )


def test_invalid_corpus_size_and_quality() -> None:
    FIGURES["invalid"] = f"{len(INVALID)} invalid queries refused with line, column and message"
    assert len(INVALID) >= 60
    misspelt_commands = [e for e in INVALID if e["message"].startswith("unknown command")]
    misspelt_functions = [e for e in INVALID if e["message"].startswith("unknown function")]
    assert len(misspelt_commands) >= 15 and len(misspelt_functions) >= 8
    for e in misspelt_commands + misspelt_functions:
        assert "did you mean" in e["message"], e
    expected_tokens = [e for e in INVALID if "expected" in e["message"]]
    assert len(expected_tokens) >= 12
    for e in INVALID:
        for internal in ("IDENT", "VARIABLE", "RPAR", "$END", "Token(", "PIPE", "__ANON"):
            assert internal not in e["message"]


def test_every_command_and_alias_parses() -> None:
    samples = {
        "source": "source logs", "from": "from logs",
        "filter": "filter x", "f": "f x", "where": "where x",
        "block": "block x", "choose": "choose x", "select": "select x",
        "create": "create y from x", "add": "add y from x", "c": "c y from x", "a": "a y from x",
        "groupby": "groupby x aggregate count()", "multigroupby": "multigroupby (x) agg count()",
        "aggregate": "aggregate count()", "count": "count", "countby": "countby x",
        "top": "top 3 x by count()", "bottom": "bottom 3 x by count()", "distinct": "distinct x",
        "dedupeby": "dedupeby x", "orderby": "orderby x", "sortby": "sortby x",
        "limit": "limit 1", "extract": "extract x into y using kv()",
        "e": "e x into y using kv()", "explode": "explode x into y", "find": "find 'a' in x",
        "text": "text 'a' in x", "wildfind": "wildfind 'a'", "wildtext": "wildtext 'a'",
        "lucene": "lucene 'a:b'", "replace": "replace x with 1", "redact": "redact x /a/ to 'b'",
        "remove": "remove x", "r": "r x", "move": "move x to y", "m": "m x to y",
        "convert": "convert x:number", "conv": "conv x:number", "roundtime": "roundtime to 1h",
        "enrich": "enrich x into y using t", "join": "join inner (source spans) using x into y",
        "union": "union (source spans)", "stitch": "stitch (source spans) into y",
    }  # fmt: skip
    assert set(samples) == set(COMMAND_NAMES)
    for name, q in samples.items():
        text = q if name in ("source", "from") else f"source logs | {q}"
        assert validate(text).valid, (name, validate(text).errors)
    for q in ("order by x desc", "sort by x", "groupby x calc count()", "groupby x calc sum(x)"):
        assert validate(f"source logs | {q}").valid, q
    for kind in ("left", "inner", "full"):
        assert validate(f"source logs | join {kind} (source spans) on x == y into z").valid
    assert validate("source logs | join cross (source spans) into z").valid
