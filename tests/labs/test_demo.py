"""`workshop demo --fast` against the session stack (found through the same env vars)."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import workshop_cli

pytestmark = pytest.mark.stack


def _workshop(stack, *args: str, **env: str) -> str:
    """The command's stdout, once it succeeded."""
    proc = workshop_cli(stack.cfg, *args, **env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_demo_fast(stack, tmp_path):
    summary = tmp_path / "summary.json"
    out = _workshop(stack, "demo", "--fast", "--summary-json", str(summary))
    assert "the stack is running" in out  # it found the test stack instead of starting one
    assert "per phase" in out
    for title in ("Baseline", "Latency fault", "Error fault", "Recovery"):
        assert title in out
    data = json.loads(summary.read_text())
    assert data["latency"]["p95_ms"] > data["baseline"]["p95_ms"] + 200
    assert data["errors"]["error_ratio"] > 0
    assert data["baseline"]["error_ratio"] < 0.05
    assert "workshop traces" in out and "workshop down" in out
    # The slowest trace's waterfall fits 80 columns: every span keeps its duration and its bar,
    # the job's spans after the fault included.
    waterfall = out[out.index("The slowest request") : out.index("shows it again")]
    rows = [line for line in waterfall.splitlines() if line.startswith("│")]
    assert len(rows) >= 20 and all(len(line) <= 80 for line in waterfall.splitlines())
    for row in rows:
        *_, duration, timeline = row.strip("│").split("│")
        assert re.fullmatch(r"\s*\d+\.\d ms\s*", duration), row
        assert timeline.strip() and "…" not in timeline, row
    assert "process stream:jobs" in waterfall
    # no team host configured: no Coralogix link, one hint; the host to pick is printed
    assert "set CX_TEAM_URL to get links" in out and "/explore?" not in out
    assert "Infrastructure Explorer" in out and "host.name" in out
    # Its faults are gone.
    assert stack.gateway(admin_token=stack.admin_token).faults() == []


def test_lab_run_prints_where_to_look_whole_at_80_columns(stack):
    """`workshop lab run` in a terminal: the notebook's where-to-look list with its queries,
    the host to pick, and each Explore link on one unbroken line a click or a copy takes."""
    attendee = "cli-80"
    out = _workshop(
        stack,
        *("lab", "run", "00", "--short", "--attendee", attendee),
        CX_TEAM_URL="https://acme.app.eu2.coralogix.com",
    )
    lines = out.splitlines()
    # the live table ends its last line: what follows starts a line of its own
    after = lines[next(i for i, line in enumerate(lines) if line.startswith("└")) + 1]
    assert after in ("no fault left active",) or after.startswith("cleared "), after
    where = out[out.index("Where to look") : out.index("Questions")].splitlines()
    urls = [line.strip() for line in where if "https://" in line]
    assert urls and all(
        u.startswith("https://acme.app.eu2.coralogix.com/explore?") and "&to=" in u for u in urls
    )
    assert f"  source spans | filter $d.tags['workshop.attendee'] == '{attendee}'" in where
    assert any("host.id" in line for line in where)
