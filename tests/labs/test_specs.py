"""Specs validate; every lab has a notebook and a guide; generated files never drift."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import pytest

from labs.guides.markdown import render_all
from labs.guides.notebooks import lab_script
from labs.runtime import CHECKS, all_specs, load_spec
from labs.runtime.spec import LabSpec, spec_files

REPO = Path(__file__).resolve().parents[2]
EXPECTED_LABS = {"00", "01", "02", "03", "04", "05", "06", "07", "instructor"}


def test_every_lab_has_a_valid_spec():
    specs = all_specs()
    assert {s.id for s in specs} == EXPECTED_LABS
    for s in specs:
        assert s.questions, s.id
        for q in s.questions:
            assert q.local.check in CHECKS
            assert q.dataprime is None or q.dataprime.query.strip().startswith("source ")


def test_lab_02_target_is_hidden():
    spec = load_spec("02")
    assert spec.faults[0].target == "hidden" and len(spec.faults[0].candidates) >= 2
    assert spec.questions[0].expected.fault_target == 0


@pytest.mark.parametrize("alias", ["2", "02", "latency", "02-latency"])
def test_load_by_alias(alias):
    assert load_spec(alias).id == "02"


def test_invalid_fault_target_is_rejected():
    data = load_spec("05").model_dump()
    data["faults"][0]["target"] = "storage-service"
    data["faults"][0]["kind"] = "queue_stall"
    with pytest.raises(ValueError, match="cannot target"):
        LabSpec.model_validate(data)


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.stem)
def test_every_lab_has_notebook_and_guide(path):
    spec = load_spec(path.stem)
    assert (REPO / "notebooks" / f"{spec.name}.ipynb").exists()
    assert (REPO / "notebooks" / f"{spec.name}.py").exists()
    if spec.id != "instructor":
        assert (REPO / "docs" / "labs" / f"{spec.name}.md").exists()


def test_markdown_guides_are_generated_from_specs(tmp_path):
    for rel, text in render_all().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
        committed = REPO / rel
        assert committed.exists(), f"{rel} missing: run `python -m labs.guides docs`"
        assert committed.read_text() == text, (
            f"{rel} drifted from the specs: run `python -m labs.guides docs`"
        )


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_notebook_scripts_match_specs_and_pairs_are_in_sync(spec):
    py = REPO / "notebooks" / f"{spec.name}.py"
    ipynb = py.with_suffix(".ipynb")
    assert py.read_text() == lab_script(spec), (
        f"{py.name} drifted: `python -m labs.guides notebooks`"
    )
    paired = jupytext.read(py)
    committed = nbformat.read(ipynb, as_version=4)
    nbformat.validate(committed)
    assert [c.source for c in committed.cells] == [c.source for c in paired.cells], (
        f"{ipynb.name} is out of sync with {py.name}: `python -m labs.guides notebooks`"
    )
    assert [c.cell_type for c in committed.cells] == [c.cell_type for c in paired.cells]


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_are_stripped(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: outputs must be stripped"
            assert cell.get("execution_count") is None, (
                f"{path.name}: execution counts must be stripped"
            )
    tags = [c.get("metadata", {}).get("tags", []) for c in nb["cells"]]
    assert any("parameters" in t for t in tags), f"{path.name}: no `parameters` cell"


def test_notebooks_never_import_locust():
    for path in (REPO / "notebooks").glob("*.py"):
        assert "import locust" not in path.read_text()
        assert "from locust" not in path.read_text()


# ---- honest checks: the lint over labs/specs -------------------------------------------------
def _literals(query: str) -> set[str]:
    import re

    return {m.strip().lower() for m in re.findall(r"'([^']*)'", query)}


def answer_leaks(question) -> list[str]:
    """Why a question's online check could return its answer whatever the data."""
    problems = []
    dp = question.dataprime
    if dp is None:
        return problems
    lits = _literals(dp.query)
    answers = set()
    if question.expected.value is not None:
        answers.add(str(question.expected.value).strip().lower())
    answers |= {c.strip().lower() for c in question.answer.choices}
    if leaked := sorted(answers & lits):
        problems.append(f"the query contains its answer(s) {leaked} as a literal")
    if "{attendee}" not in dp.query:
        problems.append("the query does not filter on the attendee")
    return problems


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_no_online_check_contains_its_answer_and_all_filter_on_the_attendee(spec):
    for q in spec.questions:
        assert not answer_leaks(q), f"{spec.id}/{q.id}: {answer_leaks(q)}"


def test_the_lint_catches_the_checks_that_could_not_fail():
    # The queries lab 05 and lab 04 shipped before: they named their answer.
    bad_05 = load_spec("05").question("hot_service").model_copy(deep=True)
    bad_05.answer.choices = ["system.cpu.time", "system.memory.usage"]
    bad_05.expected.value, bad_05.expected.fault_target = "system.cpu.time", None
    bad_05.dataprime.query = "source logs | limit 1 | create answer from 'system.cpu.time'"
    assert any("contains its answer" in p for p in answer_leaks(bad_05))
    bad_04 = load_spec("04").question("gateway_slower").model_copy(deep=True)
    bad_04.dataprime.query = (
        "source spans | filter $l.serviceName == 'api-gateway' | aggregate "
        "percentile(0.95, $m.duration) as p | create answer from if(p > 1, 'yes', 'no')"
    )
    problems = answer_leaks(bad_04)
    assert any("contains its answer" in p for p in problems)
    assert any("attendee" in p for p in problems)


def test_faults_are_attendee_scoped_unless_they_are_room_events():
    from stack.common.room import is_room_event_kind

    for spec in all_specs():
        for f in spec.faults:
            assert f.scope == ("all" if is_room_event_kind(f.kind) else "attendee"), (spec.id, f)
    data = load_spec("06").model_dump()
    data["faults"][0]["scope"] = "attendee"
    with pytest.raises(ValueError, match="room event"):
        LabSpec.model_validate(data)
    data = load_spec("02").model_dump()
    data["faults"][0]["scope"] = "all"
    with pytest.raises(ValueError, match="scoped to the attendee"):
        LabSpec.model_validate(data)
