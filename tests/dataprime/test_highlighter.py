"""The UI highlighter, run under Node when it is installed: it colours what the grammar reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "stack" / "frontend" / "static"
NODE = shutil.which("node")

SCRIPT = """
import { tokenize } from "%s";
const q = process.argv[2];
console.log(JSON.stringify(tokenize(q).filter(t => t.kind !== "ws")));
"""


def _tokens(query: str, tmp_path: Path) -> list[dict[str, str]]:
    runner = tmp_path / "run.mjs"
    runner.write_text(SCRIPT % (STATIC / "highlight.js").as_uri(), encoding="utf-8")
    out = subprocess.run(
        [NODE or "node", str(runner), query], capture_output=True, text=True, timeout=20, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_highlighter_follows_the_grammar(tmp_path: Path) -> None:
    q = (
        "source spans last 1h # mine\n| filter $d.tags['workshop.attendee'] == 'a' && $d ~~ 'x'"
        " | groupby $l.serviceName aggregate count() as n | e x into y using kv() | limit 5"
    )
    toks = _tokens(q, tmp_path)
    kinds = {(t["text"], t["kind"]) for t in toks}
    assert ("source", "keyword") in kinds and ("last", "keyword") in kinds
    assert ("# mine", "comment") in kinds
    assert ("$d.tags['workshop.attendee']", "keypath") in kinds
    assert ("~~", "op") in kinds
    assert ("count", "function") in kinds  # a function here, not the `count` command
    assert ("e", "keyword") in kinds  # the `extract` alias right after `|`
    assert ("x", "ident") in kinds  # ... while a bare `x` is a field
