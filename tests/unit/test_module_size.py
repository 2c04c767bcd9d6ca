"""No kit module over 600 lines (issue 18), except the ones that say why in their docstring."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("stack", "scenarios", "labs", "workshop")
LIMIT = 600
# Each exception's own docstring gives the reason; the test checks that it still does.
EXCEPTIONS = {
    "stack/dataprime/parser.py": "Over 600 lines on purpose",
    "stack/dataprime/executor.py": "Over 600 lines on purpose",
    # the frozen baseline arm of the validation bench: stack/dataprime/legacy/__init__.py
    "stack/dataprime/legacy/generator.py": "Frozen on purpose",
}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_no_module_over_the_limit() -> None:
    too_long = {
        str(p.relative_to(REPO)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert set(too_long) <= set(EXCEPTIONS), {
        k: v for k, v in too_long.items() if k not in EXCEPTIONS
    }


def test_each_exception_still_says_why() -> None:
    for rel, phrase in EXCEPTIONS.items():
        module = REPO / rel
        if module.parent.name == "legacy":  # the package says it for all its modules
            module = module.with_name("__init__.py")
        text = module.read_text(encoding="utf-8")
        assert phrase in text.split('"""')[1], f"{rel}: its docstring no longer says why"
