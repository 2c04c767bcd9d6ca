"""The CLI's tables at a terminal's widths: nothing cut that a learner types or opens."""

from __future__ import annotations

import pytest
import typer
from rich.console import Console

from labs.runtime.spec import all_specs
from workshop import lab_cmd


@pytest.mark.parametrize("width", [80, 100, 140])
def test_lab_list_fits_and_keeps_every_id_whole(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    console = Console(width=width, record=True)
    monkeypatch.setattr(lab_cmd, "console", console)
    lab_cmd.list_labs()
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines())
    assert "…" not in text  # wrapped between words, never cut
    words = set(text.replace(",", " ").replace("│", " ").split())
    for spec in all_specs():
        assert spec.id in words
        assert {q.id for q in spec.questions} <= words, spec.id
        assert {f.kind for f in spec.faults} <= words, spec.id
        if width >= 120:  # the notebook to open, by name
            assert f"{spec.name}.ipynb" in words


@pytest.mark.parametrize("width", [80, 120])
def test_fault_catalogue_keeps_every_kind_and_target_whole(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """`workshop fault add KIND TARGET` takes both as printed: neither may end in "…"."""
    from stack.common.faults import registry
    from workshop import fault_cmd

    class Catalogue:  # the gateway's answer is the registry's catalogue, as JSON
        def catalogue(self) -> list[dict[str, object]]:
            return registry.catalogue()

    console = Console(width=width, record=True)
    monkeypatch.setattr(fault_cmd, "console", console)
    monkeypatch.setattr(fault_cmd, "_gateway", Catalogue)
    fault_cmd.catalogue()
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines())
    words = set(text.replace("│", " ").split())
    for kind in registry.catalogue():
        assert kind["kind"] in words
        assert set(kind["targets"]) <= words, kind["kind"]  # type: ignore[arg-type]


def test_load_list_describes_every_scenario_in_whole_sentences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`workshop load --list`: each scenario's comment paragraph, not its first line cut
    mid-sentence, and not the usage example under it."""
    from scenarios.runner import scenario_description, scenarios
    from workshop import load_cmd

    console = Console(width=80, record=True)
    monkeypatch.setattr(load_cmd, "console", console)
    load_cmd.load(scenario=None, list_=True)
    text = " ".join(console.export_text().split())  # the wrapped grid, as one line
    for name in scenarios():
        description = scenario_description(name)
        assert description.endswith((".", ")")) and "locust -f" not in description, name
        assert f"{name} {description}" in text


@pytest.mark.parametrize("width", [80, 120])
def test_load_stats_table_fits_and_never_cuts_a_number(width: int) -> None:
    """Numbers keep every digit (a cut 1200 reads as 120); the request name gives way."""
    from workshop.load_cmd import stats_table

    names = ["/api/queries/[id]/feedback", "question→done", "Aggregated", "frontend /app.js"]
    rows = [
        {"Type": "POST", "Name": name, "Request Count": "12345", "Failure Count": "12"}
        | {"50%": "220", "95%": "1200", "99%": "15000", "Requests/s": "123.456"}
        for name in names
    ]
    console = Console(width=width, record=True)
    console.print(stats_table(rows, "smoke", max_width=width))
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    header = next(line for line in lines if line.startswith("┃"))
    columns = ["type", "name", "reqs", "fails", "p50", "p95", "p99", "req/s"]
    assert [c.strip() for c in header.strip("┃").split("┃")] == columns
    body = [line for line in lines if line.startswith("│")]
    for line, name in zip(body, names, strict=True):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[2:] == ["12345", "12", "220", "1200", "15000", "123.5"], line
        assert cells[1] == name or (width < 120 and name.startswith(cells[1].rstrip("…"))), line


def test_load_stats_table_before_the_first_rows_shows_its_headers() -> None:
    """The live table's first frame, before Locust writes any stats: every header, no row."""
    from workshop.load_cmd import stats_table

    console = Console(width=80, record=True)
    console.print(stats_table([], "smoke · live", max_width=80))
    text = console.export_text()
    assert "smoke · live" in text and "req/s" in text
    assert not [line for line in text.splitlines() if line.startswith("│")]


def test_load_names_why_locust_exited_2(tmp_path) -> None:
    """Locust's reasons, from its log: the last distinct error lines, not its tracebacks."""
    from workshop.load_cmd import locust_errors

    log = tmp_path / "locust.log"
    log.write_text(
        "[2026-12-08 00:18:55] vm/INFO/locust.main: Starting Locust 2.47.0\n"
        '  File "runners.py", line 3, in start\n'
        "ValueError: target_user_count must be >= 0, got -3\n"
        "ValueError: target_user_count must be >= 0, got -3\n"
        "__main__.py: error: argument -t/--run-time: Invalid time span format.\n"
        "Invalid --processes count -7\n"
        "[2026-12-08 00:18:56] vm/INFO/locust.main: Shutting down (exit code 2)\n"
    )
    assert locust_errors(log) == [
        "ValueError: target_user_count must be >= 0, got -3",
        "__main__.py: error: argument -t/--run-time: Invalid time span format.",
        "Invalid --processes count -7",
    ]
    assert locust_errors(tmp_path / "missing.log") == []


def test_a_live_view_ends_its_last_line_when_stdout_is_not_a_terminal() -> None:
    """rich's Live leaves a piped table's last line open; the next print must not join it."""
    import io

    from rich.table import Table

    from labs.runtime.views import live_view

    out = io.StringIO()
    console = Console(file=out, width=40, force_terminal=False)
    table = Table("a")
    table.add_row("1")
    with live_view(console, table, refresh_per_second=4) as live:
        live.update(table)
    console.print("next")
    assert out.getvalue().splitlines()[-1] == "next"


def test_lab_check_names_the_word_that_is_not_a_question(monkeypatch) -> None:
    """`workshop lab check 01 nosuch 1` used to answer only "which question?"."""
    console = Console(width=80, record=True)
    monkeypatch.setattr(lab_cmd, "console", console)
    with pytest.raises(typer.Exit) as exit_:
        lab_cmd.check("01", ["nosuch", "1"], attendee="cli-test")
    assert exit_.value.exit_code == 2
    text = " ".join(console.export_text().split())
    qids = ", ".join(q.id for q in next(s for s in all_specs() if s.id == "01").questions)
    assert "`nosuch` is not a question of lab 01" in text
    assert f"workshop lab check 01 QUESTION_ID ANSWER`, QUESTION_ID one of: {qids}" in text


def test_room_progress_with_no_reports_says_what_fills_it(monkeypatch) -> None:
    """It used to print an empty table."""
    from workshop import room_cmd

    class NoReports:
        def room_progress(self) -> list:
            return []

    console = Console(width=80, record=True)
    monkeypatch.setattr(room_cmd, "console", console)
    monkeypatch.setattr(room_cmd, "_gateway", NoReports)
    room_cmd.progress()
    text = console.export_text()
    assert "no attendee has reported yet" in text and "┃" not in text
