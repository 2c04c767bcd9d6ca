"""The compiled parser (lark_cython) gives the same AST as the pure-Python one, for every
public query and every query the generator writes; invalid text still gets the pure parser's
worded errors (tests/dataprime/test_conformance.py checks those)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stack.dataprime import generate, parser

HERE = Path(__file__).parent
CORPUS = yaml.safe_load((HERE / "corpus.yaml").read_text(encoding="utf-8"))["queries"]
QUESTIONS = HERE.parents[1] / "scenarios" / "questions.txt"


def _queries() -> list[str]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    asked = [q.strip() for q in lines if q.strip() and not q.startswith("#")]
    return [e["query"] for e in CORPUS if e.get("check") != "expression"] + [
        generate(q).query for q in asked
    ]


def test_the_compiled_parser_is_in_use() -> None:
    # The lock pins lark-cython; a missing wheel would quietly cost a third of the speed.
    assert parser._FAST is not parser._pure()


@pytest.mark.parametrize("start", ["query", "expr"])
def test_both_parsers_build_the_same_tree(start: str) -> None:
    texts = (
        _queries()
        if start == "query"
        else [e["query"] for e in CORPUS if e.get("check") == "expression"]
    )
    compared = 0
    for text in texts:
        try:
            expected = repr(parser._pure().parse(text, start=start))
        except Exception:
            continue  # refused: the pure parser words it, whatever the compiled one did
        assert repr(parser._fast_parse(text, start)) == expected, text
        compared += 1
    assert compared >= (200 if start == "query" else 5), compared
