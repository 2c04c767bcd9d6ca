"""The CLI's tables at a terminal's widths: nothing cut that a learner types or opens."""

from __future__ import annotations

import pytest
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
