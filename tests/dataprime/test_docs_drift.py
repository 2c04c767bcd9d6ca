"""docs/dataprime.md and the highlighter's keyword list are generated; they must not drift."""

from __future__ import annotations

from pathlib import Path

from stack.dataprime import docs
from stack.dataprime.dataset import FIELD_MAP
from stack.dataprime.functions import FUNCTIONS
from stack.dataprime.parser import COMMAND_NAMES, keyword_classes

ROOT = Path(__file__).resolve().parents[2]


def test_docs_match_the_registry() -> None:
    committed = docs.DOC_PATH.read_text(encoding="utf-8")
    assert committed == docs.render_markdown(), "run `python -m stack.dataprime.docs`"


def test_docs_cover_every_function_and_field() -> None:
    text = docs.render_markdown()
    for fn in FUNCTIONS.values():
        assert f"| `{fn.name}` |" in text and fn.url in text
        assert fn.description and len(fn.description) < 120
    for key, *_ in FIELD_MAP:
        assert f"| `{key}` |" in text
    assert "$m.duration" in text and "microseconds" in text


def test_highlighter_keywords_match_the_grammar() -> None:
    committed = docs.KEYWORDS_JS_PATH.read_text(encoding="utf-8")
    assert committed == docs.render_keywords_js(), "run `python -m stack.dataprime.docs`"
    classes = keyword_classes()
    assert set(COMMAND_NAMES) <= set(classes["command"])
    highlight = (ROOT / "stack/frontend/static/highlight.js").read_text(encoding="utf-8")
    assert 'from "./dataprime-keywords.js"' in highlight
    assert "const KEYWORDS = new Set([" not in highlight  # no second, hand-kept list
