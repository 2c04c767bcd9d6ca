"""docs/architecture.md's service table agrees with the port registry it describes."""

from __future__ import annotations

import re
from pathlib import Path

from stack.common.settings import PORT_OFFSETS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
BASE = 8010  # WORKSHOP_PORT_BASE's default, the ports the compose deployment pins


def table(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([a-z-]+)` \| (\d+) \|", text, re.M)}


def test_the_service_table_matches_the_registry() -> None:
    expected = {str(name): BASE + offset for name, offset in PORT_OFFSETS.items()}
    assert table(DOC.read_text(encoding="utf-8")) == expected


def test_a_wrong_port_is_seen() -> None:
    text = DOC.read_text(encoding="utf-8").replace(
        "| `queue-worker` | 8016 |", "| `queue-worker` | 8019 |"
    )
    expected = {str(name): BASE + offset for name, offset in PORT_OFFSETS.items()}
    assert table(text) != expected
